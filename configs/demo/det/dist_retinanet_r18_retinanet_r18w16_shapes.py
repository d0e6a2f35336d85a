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
# Our hooks join default_hooks, a dict merged with the inherited one; a custom_hooks list
# would replace the stock config's own (EMAHook, PipelineSwitchHook, ...).
default_hooks = dict(
    export_student=dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + config
    stop_on_non_finite_loss=dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),
    random_state=dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
    epoch_schedule_check=dict(type='mmkd_plugins.EpochScheduleCheckHook'),
    checkpoint=dict(type='mmkd_plugins.AtomicCheckpointHook'))  # keeps the stock settings
