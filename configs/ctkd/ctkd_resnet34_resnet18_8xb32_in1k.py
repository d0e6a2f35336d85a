# CTKD (Li et al., AAAI 2023): KD whose temperature is learned adversarially through a gradient
# reversal layer, with the authors' ImageNet setting (scripts/run_imagenet_distill.sh): a global
# temperature 1 + 20 sigmoid(theta) starting at theta = 1 (tau 15.62), lambda from 0 to 1 over 5
# epochs (cosine, epochs counted from 1), CE and KD weights 1.
# ResNet-34 teacher -> ResNet-18 student; everything but the model is the stock mmpretrain config.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distillation_runtime.py']

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

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
