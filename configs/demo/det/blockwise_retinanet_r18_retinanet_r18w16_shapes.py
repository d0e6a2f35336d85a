# Detection demo block-wise distillation: the baseline student's config plus a teacher, a loss
# and the hybrids. Hybrid N_i runs the student's backbone stages 1..i (16/32/64/128 channels),
# 1x1 conv + BN connectors into the teacher's (64/128/256/512) for stage i and every earlier
# stage the FPN reads, then the teacher's later stages, FPN and head. d = the DIST demo's
# sigmoid DIST; alpha = beta = gamma = 1.
_base_ = './student_retinanet_r18w16_shapes.py'
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/det/teacher_retinanet_r18_shapes.py',
        checkpoint='work_dirs/shapes_demo/teacher.pth'),
    distill_losses=dict(loss_dist=dict(
        type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0, activation='sigmoid')),
    hybrids=dict(connector=dict(type='mmkd_plugins.ConvBNConnector')))
# Our hooks join default_hooks, a dict merged with the inherited one; a custom_hooks list
# would replace the stock config's own (EMAHook, PipelineSwitchHook, ...).
default_hooks = dict(
    export_student=dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + config
    stop_on_non_finite_loss=dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),
    random_state=dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
    epoch_schedule_check=dict(type='mmkd_plugins.EpochScheduleCheckHook'),
    checkpoint=dict(type='mmkd_plugins.AtomicCheckpointHook'))  # keeps the stock settings
