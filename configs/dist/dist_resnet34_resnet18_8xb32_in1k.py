# DIST (Huang et al., 2022): ResNet-34 teacher -> ResNet-18 student on ImageNet-1k, with the
# paper's ImageNet setting (tau=1, beta=gamma=1, loss weight 2).
# Everything but the model (data, schedule, evaluator, hooks) is the stock mmpretrain config.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmpretrain::resnet/resnet34_8xb32_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
        'resnet34_8xb32_in1k_20210831-f257d4e6.pth'),
    distill_losses=dict(
        loss_dist=dict(type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=2.0)))

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
