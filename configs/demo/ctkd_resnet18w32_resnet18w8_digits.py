# Demo CTKD: the KD demo with a learned temperature (global, starting at the KD demo's tau 4,
# kept in (1, 21), trained adversarially; lambda warmed up over 10 epochs as the authors'
# CIFAR setting).
_base_ = './student_resnet18w8_digits.py'
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

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
custom_hooks = [
    dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + student_config.py
    dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),  # stop at the first NaN/inf loss
    dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
]
