# Block-wise logit distillation (Yu et al., arXiv 2411.01547) for a vision-transformer student:
# DeiT-S teacher -> DeiT-Ti student on ImageNet-1k. Both have 12 layers, split into four stages
# of three; a stage's state is its (B, 1 + 196, C) tokens with the class token, and the
# connectors map 192 student channels to the teacher's 384 per token. Hybrid N_i runs the
# teacher's own forward from stage i (its later layers, final norm, class token and head). As
# the ResNet config: d = KD, tau 1, 'halving' weights, alpha = beta = gamma = 1. Everything but
# the model is the stock config (Mixup/CutMix, RandAugment).
_base_ = ['mmpretrain::deit/deit-tiny_4xb256_in1k.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmpretrain::deit/deit-small_4xb256_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/deit/'
        'deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth'),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0)),
    hybrids=dict(stages=[1, 2, 3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving'),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
