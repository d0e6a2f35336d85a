# Block-wise logit distillation on RTMDet: RTMDet-S teacher -> RTMDet-tiny student. Both CSPNeXt
# backbones split into four stages after their stem (strides 4 to 32; the PAFPN reads stages 2-4);
# hybrid N_i runs the student's stages 1..i, connectors into the teacher's channels for every stage
# the PAFPN reads, the teacher's later stages, PAFPN and head; its class maps are distilled per
# level with sigmoid DIST (the head predicts with the sigmoid of its class maps) and it is trained
# by the teacher head's own losses; hybrid terms weighted 1/2^(n-i) as in the paper. Everything
# but the model is the stock mmdet config (its EMA and pipeline-switch hooks included).
_base_ = ['mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v3.0/rtmdet/'
        'rtmdet_s_8xb32-300e_coco/rtmdet_s_8xb32-300e_coco_20220905_161602-387a891e.pth'),
    distill_losses=dict(loss_dist=dict(
        type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0, activation='sigmoid')),
    hybrids=dict(stages=[1, 2, 3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving'),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
