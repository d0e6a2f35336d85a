# The DETR-family study's data, model size and schedule on top of mmdet's stock DINO R50 config:
# the detection demo's generated shapes (3 classes, 64x64 images with one shape each, COCO json),
# trained from scratch (no downloads) with an R18 backbone, 2 encoder and 3 decoder layers with
# 512-channel FFNs, 30 queries and 20 denoising queries, so that it runs on 2 CPU cores.
# `python tools/demo/run_detection_demo.py --family dino` writes the data to data/shapes.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'

data_root = 'data/shapes/'
metainfo = dict(classes=('square', 'circle', 'triangle'))
image_size = (64, 64)
ffn = dict(feedforward_channels=512)
model = dict(
    num_queries=30,
    backbone=dict(depth=18, frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[128, 256, 512]),
    encoder=dict(num_layers=2, layer_cfg=dict(ffn_cfg=ffn)),
    decoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=ffn)),
    bbox_head=dict(num_classes=3),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=20)),
    test_cfg=dict(max_per_img=30))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/train.json',
                 data_prefix=dict(img='train/'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/val.json',
                 data_prefix=dict(img='val/'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator

# The teacher's schedule (600 images make 75 iterations an epoch); the students set their own.
# DINO's AdamW and clipping; the backbone at the full learning rate (trained from scratch, not
# fine-tuned from ImageNet as the stock config's lr_mult 0.1 assumes).
max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=4)
optim_wrapper = dict(optimizer=dict(lr=2e-4),
                     paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=1.0))))
param_scheduler = [dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
                        milestones=[20], gamma=0.1)]
default_hooks = dict(logger=dict(interval=25),
                     checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0)
