# DIST on FCOS (anchor-free: one row of 80 sigmoid scores per position): R101 -> R50, both
# caffe-style. Everything but the model is the stock mmdet config.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/fcos/'
        'fcos_r101_caffe_fpn_gn-head_1x_coco/fcos_r101_caffe_fpn_gn-head_1x_coco-0e37b982.pth'),
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
