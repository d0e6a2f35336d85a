# DKD (Zhao et al., CVPR 2022) with the authors' ImageNet setting: alpha 1, beta 0.5, tau 1, the
# loss weight warmed up linearly over the first 20 of the stock schedule's 100 epochs.
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
    distill_losses=dict(loss_dkd=dict(
        type='DKDLoss', alpha=1.0, beta=0.5, tau=1.0, loss_weight=1.0, warmup_epochs=20)))

custom_hooks = [
    dict(type='mmkd_plugins.ExportStudentHook'),  # student_final.pth + student_config.py
    dict(type='mmkd_plugins.StopOnNonFiniteLossHook'),  # stop at the first NaN/inf loss
    dict(type='mmkd_plugins.RandomStateHook'),  # exact resume
]
