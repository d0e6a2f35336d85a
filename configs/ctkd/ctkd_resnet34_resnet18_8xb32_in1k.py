# CTKD (Li et al., AAAI 2023): KD whose temperature is learned adversarially through a gradient
# reversal layer, with the authors' ImageNet setting (scripts/run_imagenet_distill.sh): a global
# temperature 1 + 20 sigmoid(theta) starting at theta = 1 (tau 15.62), lambda from 0 to 1 over 5
# epochs (cosine, epochs counted from 1), CE and KD weights 1.
# ResNet-34 teacher -> ResNet-18 student; everything but the model is the stock mmpretrain config.
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmpretrain::resnet/resnet34_8xb32_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
        'resnet34_8xb32_in1k_20210831-f257d4e6.pth'),
    distill_losses=dict(loss_kd=dict(
        type='KDLoss',
        tau=dict(type='CurriculumTemperature', mode='global', init_tau=15.621171573,
                 lambda_max=1.0, warmup_epochs=5),
        loss_weight=1.0)))

# Our hooks join default_hooks, a dict merged with the inherited one; a custom_hooks list
# would replace the stock config's own (EMAHook, PipelineSwitchHook, ...).
default_hooks = dict(
    export_student=dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + config
    stop_on_non_finite_loss=dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),
    random_state=dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
    epoch_schedule_check=dict(type='mmkd_plugins.EpochScheduleCheckHook'),
    checkpoint=dict(type='mmkd_plugins.AtomicCheckpointHook'))  # keeps the stock settings
