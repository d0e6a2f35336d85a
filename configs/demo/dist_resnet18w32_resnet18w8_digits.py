# Demo DIST: the baseline student's config plus a teacher and a loss, with the paper's ImageNet
# setting (tau=1, beta=gamma=1, loss weight 2); the CIFAR setting tau=4 was unstable here.
_base_ = './student_resnet18w8_digits.py'
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/teacher_resnet18w32_digits.py',
        checkpoint='work_dirs/digits_demo/teacher.pth'),
    distill_losses=dict(
        loss_dist=dict(type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=2.0)))
custom_hooks = [
    dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + student_config.py
    dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),  # stop at the first NaN/inf loss
    dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
]
