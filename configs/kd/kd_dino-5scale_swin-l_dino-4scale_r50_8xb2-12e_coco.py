# KD on DINO: DINO Swin-L (5 scales) teacher -> DINO R50 (4 scales) student. Both decoders decode
# the same distillation boxes (the teacher's top-900 encoder proposals), each forming its queries
# its own way; binary KL on each sigmoid class score of every query and decoder layer (tau 1).
# The student's own training step (denoising and matching queries) is unchanged. Everything but
# the model is the stock mmdet config.
_base_ = ['mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v3.0/dino/'
        'dino-5scale_swin-l_8xb2-12e_coco/dino-5scale_swin-l_8xb2-12e_coco_20230228_072924-a654145f.pth'),
    distill_losses=dict(loss_kd=dict(
        type='KDLoss', tau=1.0, loss_weight=1.0, activation='sigmoid')))

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
