# Demo DKD: the authors' CIFAR-100 setting (alpha 1, beta 8, tau 4, loss weight warmed up over
# 20 epochs) on the baseline student's config.
_base_ = ['./student_resnet18w8_digits.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/teacher_resnet18w32_digits.py',
        checkpoint='work_dirs/digits_demo/teacher.pth'),
    distill_losses=dict(loss_dkd=dict(
        type='DKDLoss', alpha=1.0, beta=8.0, tau=4.0, loss_weight=1.0, warmup_epochs=20)))
default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
