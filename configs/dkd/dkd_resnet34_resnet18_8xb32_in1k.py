# DKD (Zhao et al., CVPR 2022) with the authors' ImageNet setting (mdistiller
# configs/imagenet/r34_r18/dkd.yaml): alpha 1, beta 0.5, tau 1, WARMUP 1, which with epochs
# counted from 1 is full weight from the first epoch (20 epochs is their CIFAR-100 setting).
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
    distill_losses=dict(loss_dkd=dict(
        type='DKDLoss', alpha=1.0, beta=0.5, tau=1.0, loss_weight=1.0, warmup_epochs=1)))

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
