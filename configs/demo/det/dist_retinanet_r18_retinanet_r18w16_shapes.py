# Detection demo DIST: the baseline student's config plus a teacher and a loss (the authors'
# RetinaNet recipe: sigmoid scores, beta = gamma = tau = 1, loss weight 1).
_base_ = './student_retinanet_r18w16_shapes.py'
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/det/teacher_retinanet_r18_shapes.py',
        checkpoint='work_dirs/shapes_demo/teacher.pth'),
    distill_losses=dict(loss_dist=dict(
        type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0, activation='sigmoid')))
custom_hooks = [
    dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + student_config.py
    dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),  # stop at the first NaN/inf loss
    dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
]
