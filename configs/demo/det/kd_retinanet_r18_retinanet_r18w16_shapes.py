# Detection demo KD: the baseline student's config plus a teacher and a loss (binary KL on the
# sigmoid class scores of every position and FPN level).
_base_ = ['./student_retinanet_r18w16_shapes.py', '../../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/det/teacher_retinanet_r18_shapes.py',
        checkpoint='work_dirs/shapes_demo/teacher.pth'),
    distill_losses=dict(
        loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=1.0, activation='sigmoid')))
default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
