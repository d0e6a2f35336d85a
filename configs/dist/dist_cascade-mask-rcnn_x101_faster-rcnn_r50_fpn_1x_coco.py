# DIST on Faster R-CNN, the authors' recipe: Cascade Mask R-CNN X101-64x4d teacher -> Faster
# R-CNN R50. The teacher's RoI extractor and first-stage box head score the student's sampled
# proposals; DIST compares the 81-way softmax logits. No box distillation.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::cascade_rcnn/cascade-mask-rcnn_x101-64x4d_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/'
        'cascade_mask_rcnn_x101_64x4d_fpn_1x_coco/'
        'cascade_mask_rcnn_x101_64x4d_fpn_1x_coco_20200203-9a2db89d.pth'),
    distill_losses=dict(
        loss_dist=dict(type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0)))

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
