# Block-wise logit distillation (Yu et al., arXiv 2411.01547) for a ConvNeXt student:
# ConvNeXt-V2 nano teacher -> ConvNeXt-V2 atto student on ImageNet-1k. Four stages at strides 4,
# 8, 16, 32 (each stage with the downsampling before it); hybrid N_i runs the teacher's own
# forward from stage i, so its output norm, pooling and head are the teacher's. Connectors map
# 40/80/160/320 student channels to 80/160/320/640. As the ResNet config: d = KD, tau 1,
# 'halving' weights, alpha = beta = gamma = 1. Everything but the model is the stock config
# (Mixup/CutMix, RandAugment, EMA).
_base_ = ['mmpretrain::convnext_v2/convnext-v2-atto_32xb32_in1k.py',
          '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmpretrain::convnext_v2/convnext-v2-nano_32xb32_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext-v2/'
        'convnext-v2-nano_fcmae-pre_3rdparty_in1k_20230104-fe1aaaf2.pth'),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0)),
    hybrids=dict(stages=[1, 2, 3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving'),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
