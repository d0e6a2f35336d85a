# KD on RetinaNet: R101 teacher -> R50 student, binary KL on each sigmoid class score of every
# position and FPN level (tau 1). Everything but the model is the stock mmdet config.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
        'retinanet_r101_fpn_1x_coco/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth'),
    distill_losses=dict(loss_kd=dict(
        type='KDLoss', tau=1.0, loss_weight=1.0, activation='sigmoid')))

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
