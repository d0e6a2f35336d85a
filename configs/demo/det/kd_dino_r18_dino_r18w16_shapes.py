# DETR study KD: the baseline student's config plus a teacher and a loss. Both decoders decode
# the teacher's top-30 encoder proposals (the distillation boxes); binary KL on each sigmoid class
# score of every box and decoder layer (tau 1). The student's own step is its stock DINO loss.
_base_ = ['./student_dino_r18w16_shapes.py', '../../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/det/teacher_dino_r18_shapes.py',
        checkpoint='work_dirs/shapes_dino_demo/teacher.pth'),
    distill_losses=dict(
        loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=1.0, activation='sigmoid')))
default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
