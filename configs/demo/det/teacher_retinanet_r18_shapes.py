# Detection demo teacher: RetinaNet R18 (64-channel FPN and head), on all 600 training images,
# with the base schedule (24 epochs of 75 iterations at batch 8).
_base_ = './_base_/retinanet_r18_shapes.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train.json'))
