# Block-wise logit distillation (Yu et al., arXiv 2411.01547): ResNet-34 teacher -> ResNet-18
# student on ImageNet-1k. Hybrids N_1..N_4 = teacher stages i+1..4 and head after the student's
# stages 1..i and a learned 1x1 conv + BN connector (channels inferred: here 64/128/256/512 on
# both sides). As the paper: d = KD, hybrid terms weighted 1/2^(n-i) ('halving'); tau=1 (the
# usual ImageNet KD setting); the paper gives no alpha, beta, gamma, so all are 1.
# Everything but the model is the stock mmpretrain config.
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmpretrain::resnet/resnet34_8xb32_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
        'resnet34_8xb32_in1k_20210831-f257d4e6.pth'),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0)),
    hybrids=dict(stages=[1, 2, 3, 4], connector=dict(type='mmkd_plugins.ConvBNConnector'),
                 weights='halving'),
    alpha=1.0, beta=1.0, gamma=1.0)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
