# KD on RetinaNet: R101 teacher -> R50 student, binary KL on each sigmoid class score of every
# position and FPN level (tau 1). Everything but the model is the stock mmdet config.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
        'retinanet_r101_fpn_1x_coco/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth'),
    distill_losses=dict(loss_kd=dict(
        type='KDLoss', tau=1.0, loss_weight=1.0, activation='sigmoid')))

# Our hooks join default_hooks, a dict merged with the inherited one; a custom_hooks list
# would replace the stock config's own (EMAHook, PipelineSwitchHook, ...).
default_hooks = dict(
    export_student=dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + config
    stop_on_non_finite_loss=dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),
    random_state=dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
    epoch_schedule_check=dict(type='mmkd_plugins.EpochScheduleCheckHook'),
    checkpoint=dict(type='mmkd_plugins.AtomicCheckpointHook'))  # keeps the stock settings
