# CTKD (Li et al., AAAI 2023): KD whose temperature is learned adversarially through a gradient
# reversal layer, lambda warmed up over 5 epochs (the authors' ImageNet setting), tau in (1, 21).
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
        tau=dict(type='CurriculumTemperature', mode='global', init_tau=1.5, warmup_epochs=5),
        loss_weight=1.0)))

custom_hooks = [
    dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + student_config.py
    dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),  # stop at the first NaN/inf loss
    dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
]
