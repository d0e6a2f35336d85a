# Detection demo, converged schedule: the AdamW baseline student at 1.5 x its schedule (243
# epochs), the check that the 162-epoch baseline has converged.
_base_ = './student_retinanet_r18w16_shapes_adamw.py'

max_epochs = 243
train_cfg = dict(max_epochs=max_epochs, val_interval=27)  # the same 9 points of the curves
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
