# Demo student baseline: CIFAR ResNet-18 at 1/8 width (base 8 channels), trained on only
# 50 digits (5 per class) with its labels alone.
_base_ = './_base_/resnet_cifar_digits.py'

model = dict(
    backbone=dict(stem_channels=8, base_channels=8),
    head=dict(in_channels=64))
