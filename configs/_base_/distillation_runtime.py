# What every distillation config adds to the stock config it inherits, as a second base:
#     _base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distillation_runtime.py']
#     default_hooks = {{_base_.distillation_hooks}}
# The hooks join default_hooks, a dict that merges with the stock config's own; a custom_hooks
# list in the child config would replace the stock one (EMAHook, PipelineSwitchHook, ...). The
# stock config must not define custom_imports itself (mmengine refuses a key in two bases).
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
distillation_hooks = dict(
    export_student=dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + config
    stop_on_non_finite_loss=dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),
    random_state=dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
    epoch_schedule_check=dict(type='mmkd_plugins.EpochScheduleCheckHook'),
    checkpoint=dict(type='mmkd_plugins.AtomicCheckpointHook'))  # keeps the stock settings
