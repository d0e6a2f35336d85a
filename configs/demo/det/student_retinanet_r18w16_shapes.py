# Detection demo student baseline: RetinaNet with a quarter-width R18 (base 16 channels), on
# only 100 training images, with its labels alone.
_base_ = './_base_/retinanet_r18_shapes.py'

model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128]))
train_dataloader = dict(
    dataset=dict(ann_file='annotations/train_small.json', data_prefix=dict(img='train_small/')))
