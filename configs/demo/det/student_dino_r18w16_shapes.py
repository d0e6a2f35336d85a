# DETR study student baseline: DINO with a quarter-width R18 (base 16 channels) and the teacher's
# transformer, on only 100 training images, with its labels alone: 60 epochs of 25 iterations at
# batch 4 (AdamW, lr 2e-4, divided by 10 for the last 10 epochs). The study checks it against
# 1.5 x as long (student_dino_r18w16_shapes_1.5x.py).
_base_ = './_base_/dino_r18_shapes.py'

model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    neck=dict(in_channels=[32, 64, 128]))
train_dataloader = dict(
    batch_size=4,
    dataset=dict(ann_file='annotations/train_small.json', data_prefix=dict(img='train_small/')))
max_epochs = 60
train_cfg = dict(max_epochs=max_epochs, val_interval=6)  # 10 points of the mAP curves
param_scheduler = [dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
                        milestones=[50], gamma=0.1)]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
