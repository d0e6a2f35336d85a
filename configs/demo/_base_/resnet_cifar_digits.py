# The embedded demo's data and schedule: scikit-learn's handwritten digits (10 classes) as a
# 16x16 image folder, on top of mmpretrain's stock CIFAR ResNet-18 config.
# `python tools/demo/run_classification_demo.py` writes the folder to data/digits.
_base_ = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'

data_root = 'data/digits'
image_size = 16
data_preprocessor = dict(
    num_classes=10, mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=False)
# Strong augmentation (random scale/aspect crops and rotations): with only 50 labelled images it
# barely helps the baseline, but the teacher's outputs on every new view are what the student
# learns from, so it is where distillation shows (see docs/demos.md).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=image_size, crop_ratio_range=(0.5, 1.0)),
    dict(type='Rotate', angle=20.0, prob=0.5, random_negative_prob=0.5),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='student_train.txt',
        classes=[str(digit) for digit in range(10)],
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        ann_file='test.txt',
        classes=[str(digit) for digit in range(10)],
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# 50 training images make 2 iterations an epoch: 400 epochs bring the baseline to convergence
# (600 epochs gave the same accuracy within the seed spread).
max_epochs = 400
optim_wrapper = dict(optimizer=dict(lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', by_epoch=True, T_max=max_epochs)
# Validation every 20 epochs (500 small images, under a second) draws the accuracy curves of the
# demo's report.
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=20)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=False)
