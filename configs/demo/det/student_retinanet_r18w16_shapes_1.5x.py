# Detection demo convergence check: the baseline student at 1.5 x its schedule (162 epochs).
# The demo reports it next to the 108-epoch baseline: a difference below one seed standard
# deviation says that the students are compared against a baseline that has converged.
_base_ = './student_retinanet_r18w16_shapes.py'

max_epochs = 162
train_cfg = dict(max_epochs=max_epochs, val_interval=18)  # the same 9 points of the curves
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
