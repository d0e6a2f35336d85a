# Block-wise logit distillation across architectures: Swin-T teacher (a transformer) -> ResNet-18
# student (a CNN) on ImageNet-1k. Both have four stages at strides 4, 8, 16, 32, paired stage by
# stage. Each student stage's (B, C, H, W) map goes through a 1x1 conv + BN connector to the Swin
# stage's channels (64/128/256/512 -> 96/192/384/768) and is laid out as the Swin stage's tokens
# on its grid for the batch's input size; hybrid N_i runs the teacher's own forward from stage i
# (its later stages, patch merging, final norm and head). As the ResNet config: d = KD, tau 1,
# 'halving' weights, alpha = beta = gamma = 1. Everything but the model is the stock ResNet-18
# config (its 224-px crops are what Swin-T was trained at).
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/swin-transformer/'
        'swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth'),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0)),
    hybrids=dict(stages=[1, 2, 3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving'),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
