# Demo teacher: CIFAR ResNet-18 at half width (base 32 channels), trained on 1,297 digits.
_base_ = './_base_/resnet_cifar_digits.py'

model = dict(
    backbone=dict(stem_channels=32, base_channels=32),
    head=dict(in_channels=256))
train_dataloader = dict(dataset=dict(ann_file='teacher_train.txt'))
max_epochs = 30
param_scheduler = dict(T_max=max_epochs)
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
