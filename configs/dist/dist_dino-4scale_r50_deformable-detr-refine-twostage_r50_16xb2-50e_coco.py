# DIST across DETR variants: DINO R50 teacher -> two-stage Deformable DETR R50 student. Both
# decoders decode the same distillation boxes (the teacher's top-300 encoder proposals, 300 being
# the student's query count), each forming its queries its own way; DIST on the sigmoid class
# scores of every query, per decoder layer. Everything but the model is the stock mmdet config.
_base_ = [
    'mmdet::deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py',
    '../_base_/distillation_runtime.py'
]

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v3.0/dino/'
        'dino-4scale_r50_8xb2-12e_coco/dino-4scale_r50_8xb2-12e_coco_20221202_182705-55b2bba2.pth'),
    distill_losses=dict(loss_dist=dict(
        type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0, activation='sigmoid')))

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
