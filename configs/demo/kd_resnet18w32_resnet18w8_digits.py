# Demo KD: the baseline student's config plus a teacher and a loss.
_base_ = ['./student_resnet18w8_digits.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/teacher_resnet18w32_digits.py',
        checkpoint='work_dirs/digits_demo/teacher.pth'),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=4.0, loss_weight=1.0)))
default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
