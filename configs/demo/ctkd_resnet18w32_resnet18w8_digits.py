# Demo CTKD: the KD demo with a learned temperature (global, starting at the KD demo's tau 4,
# kept in (1, 21), trained adversarially; lambda warmed up over 10 epochs as the authors'
# CIFAR setting).
_base_ = ['./student_resnet18w8_digits.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/teacher_resnet18w32_digits.py',
        checkpoint='work_dirs/digits_demo/teacher.pth'),
    distill_losses=dict(loss_kd=dict(
        type='KDLoss',
        tau=dict(type='CurriculumTemperature', mode='global', init_tau=4.0, warmup_epochs=10),
        loss_weight=1.0)))
default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
