# Classic KD (Hinton): ResNet-34 teacher -> ResNet-18 student on ImageNet-1k, with the KD
# baseline setting of the DKD authors (mdistiller configs/imagenet/r34_r18/kd.yaml: T 1, CE and
# KD weights 0.5 each; see README.md here). Everything but the model (data, schedule,
# evaluator, hooks) is the stock mmpretrain config.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmpretrain::resnet/resnet34_8xb32_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
        'resnet34_8xb32_in1k_20210831-f257d4e6.pth'),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=0.5)),
    student_loss_weight=0.5)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
