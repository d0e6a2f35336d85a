# Two teachers at once: ResNet-34 with KD and ResNet-50 with DIST (half weight), distilled into
# the stock ResNet-18 ImageNet recipe. Each teacher is loaded strictly and frozen like a single
# teacher; its losses are logged as distill.<teacher>.<loss>. Everything but the model is the
# stock mmpretrain config.
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmkd_plugins.MultiTeacherDistiller',
    student={{_base_.model}},
    teachers=dict(
        resnet34=dict(
            config='mmpretrain::resnet/resnet34_8xb32_in1k.py',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet34_8xb32_in1k_20210831-f257d4e6.pth',
            distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0)),
            weight=1.0),
        resnet50=dict(
            config='mmpretrain::resnet/resnet50_8xb32_in1k.py',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
            'resnet50_8xb32_in1k_20210831-ea4938fc.pth',
            distill_losses=dict(loss_dist=dict(type='DISTLoss', tau=1.0, loss_weight=2.0)),
            weight=0.5)))

# Our hooks join default_hooks, a dict merged with the inherited one; a custom_hooks list
# would replace the stock config's own (EMAHook, PipelineSwitchHook, ...).
default_hooks = dict(
    export_student=dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + config
    stop_on_non_finite_loss=dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),
    random_state=dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
    epoch_schedule_check=dict(type='mmkd_plugins.EpochScheduleCheckHook'),
    checkpoint=dict(type='mmkd_plugins.AtomicCheckpointHook'))  # keeps the stock settings
