# Block-wise logit distillation across families: ResNet-50 teacher -> MobileNetV2 student on
# ImageNet-1k (one of the standard heterogeneous pairs of the distillation literature). Both
# split into four stages at strides 4, 8, 16, 32, paired stage by stage; the 1x1 conv + BN
# connectors map the student's inverted-residual stage outputs to the teacher's bottleneck
# channels (24/32/96/1280 -> 256/512/1024/2048). As the ResNet config: d = KD, tau 1, 'halving'
# weights, alpha = beta = gamma = 1. Everything but the model is the stock MobileNetV2 config.
_base_ = [
    'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py', '../_base_/distillation_runtime.py'
]

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmpretrain::resnet/resnet50_8xb32_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
        'resnet50_8xb32_in1k_20210831-ea4938fc.pth'),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0)),
    hybrids=dict(stages=[1, 2, 3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving'),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
