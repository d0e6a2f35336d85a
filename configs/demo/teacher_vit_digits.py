# A demo teacher of another family than the student: a small vision transformer (2x2 patches of
# the 16x16 digits: an 8x8 grid of tokens and a class token, 64 channels, four layers), trained on
# the 1,297 digits as the ResNet teacher. AdamW, as transformers are trained; more epochs than the
# ResNet teacher, as a transformer on so few images needs them.
_base_ = './teacher_resnet18w32_digits.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='VisionTransformer',
        img_size=16,
        patch_size=2,
        arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128),
        drop_path_rate=0.1),
    neck=None,
    head=dict(in_channels=64))
max_epochs = 100
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = dict(T_max=max_epochs)
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs))
