# Detection demo DIST: the baseline student's config plus a teacher and a loss (the authors'
# RetinaNet recipe: sigmoid scores, beta = gamma = tau = 1, loss weight 1).
_base_ = ['./student_retinanet_r18w16_shapes.py', '../../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/det/teacher_retinanet_r18_shapes.py',
        checkpoint='work_dirs/shapes_demo/teacher.pth'),
    distill_losses=dict(loss_dist=dict(
        type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0, activation='sigmoid')))
default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
