# Block-wise logit distillation on Faster R-CNN: R101 teacher -> R50 student. Hybrid N_i runs
# the student's backbone stages 1..i, connectors into the teacher's feature space for every
# stage the FPN reads, the teacher's later stages and FPN, then the teacher's RoI extractor and
# box head on the student's sampled RoIs of the step (no second RPN, no second sampling); it
# is trained by the teacher box head's loss with the student's targets for those RoIs, and its
# RoI class logits are distilled with softmax DIST, as the two-stage DIST config does. Hybrid
# terms weighted 1/2^(n-i) as in the paper. Everything but the model is the stock config.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
        'faster_rcnn_r101_fpn_1x_coco/faster_rcnn_r101_fpn_1x_coco_20200130-f513f705.pth'),
    distill_losses=dict(
        loss_dist=dict(type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0)),
    hybrids=dict(stages=[1, 2, 3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving'),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
