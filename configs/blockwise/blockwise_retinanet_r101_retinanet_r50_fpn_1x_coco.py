# Block-wise logit distillation on RetinaNet: R101 teacher -> R50 student. Hybrid N_i runs the
# student's backbone stages 1..i, connectors into the teacher's feature space for every stage
# the FPN reads (2-4), the teacher's later stages, FPN and head; its class maps are distilled
# per FPN level with sigmoid DIST, as the single-teacher DIST config does, and it is trained by
# the teacher head's own focal and box losses; hybrid terms weighted 1/2^(n-i) as in the paper.
# Everything but the model is the stock mmdet config.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
        'retinanet_r101_fpn_1x_coco/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth'),
    distill_losses=dict(loss_dist=dict(
        type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0, activation='sigmoid')),
    hybrids=dict(stages=[1, 2, 3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving'),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
