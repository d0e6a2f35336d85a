# DIST on FCOS (anchor-free: one row of 80 sigmoid scores per position): R101 -> R50, both
# caffe-style. Everything but the model is the stock mmdet config.
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/fcos/'
        'fcos_r101_caffe_fpn_gn-head_1x_coco/fcos_r101_caffe_fpn_gn-head_1x_coco-0e37b982.pth'),
    distill_losses=dict(loss_dist=dict(
        type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0, activation='sigmoid')))

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
