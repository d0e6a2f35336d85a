# What every distillation config adds to the stock config it inherits, as a second base:
#     _base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distillation_runtime.py']
#     default_hooks = {{_base_.distillation_hooks}}
# The hooks join default_hooks, a dict that merges with the stock config's own; a custom_hooks
# list in the child config would replace the stock one (EMAHook, PipelineSwitchHook, ...).
# No custom_imports: our types carry the scope prefix ('mmkd_plugins.Distiller'), and mmengine
# imports the package that a prefix names when it builds them; a stock config's own
# custom_imports stays as it is.
# The runner makes checkpoint loading weights-only and checkpoint writes atomic, and completes
# the config for distillation (a resumed run's seed, the stock optimizer constructor on the
# student, a soft-label store's pipeline, DDP on CPUs) whichever train script builds it: this
# project's, mmpretrain's or mmdet's own, or `mim train`.
runner_type = 'mmkd_plugins.DistillationRunner'
distillation_hooks = dict(
    export_student=dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + config
    stop_on_non_finite_loss=dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),
    random_state=dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
    epoch_schedule_check=dict(type='mmkd_plugins.EpochScheduleCheckHook'),
    checkpoint=dict(type='mmkd_plugins.AtomicCheckpointHook'))  # keeps the stock settings
