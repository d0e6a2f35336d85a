# DeiT's distillation token (Touvron et al., ICML 2021): a DeiT-Tiny student with its stock
# distilled head (class token and distillation token, DeiTClsHead), a CNN teacher from the
# model zoo (ConvNeXt-B, 83.66 top-1; the paper's RegNetY-16GF is not in mmpretrain's zoo).
# As in the paper's hard distillation: the class token's classifier learns the labels (the
# stock head loss: label smoothing 0.1), the distillation token's classifier the teacher's
# argmax, half each; the prediction is the mean of both classifiers (the stock head's).
# Everything but the model is the stock mmpretrain config (its Mixup/CutMix included: the
# teacher labels the mixed image, as in the paper).
_base_ = ['mmpretrain::deit/deit-tiny-distilled_4xb256_in1k.py',
          '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.Distiller',
    student={{_base_.model}},
    teacher=dict(
        config='mmpretrain::convnext/convnext-base_32xb128_in1k.py',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext/'
        'convnext-base_32xb128_in1k_20221207-fbdb5eb9.pth'),
    distill_losses=dict(loss_hard=dict(type='HardDistillationLoss', loss_weight=0.5)),
    student_loss_weight=0.5)

default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
