# Detection demo, converged schedule: KD as in kd_retinanet_r18_retinanet_r18w16_shapes.py, with
# the AdamW schedule of student_retinanet_r18w16_shapes_adamw.py (162 epochs).
_base_ = './kd_retinanet_r18_retinanet_r18w16_shapes.py'

max_epochs = 162
train_cfg = dict(max_epochs=max_epochs, val_interval=18)
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
