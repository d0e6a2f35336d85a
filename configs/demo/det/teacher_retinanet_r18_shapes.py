# Detection demo teacher: RetinaNet R18 (64-channel FPN and head), on all 600 training images.
_base_ = './_base_/retinanet_r18_shapes.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train.json'))
max_epochs = 12  # 75 iterations an epoch
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
