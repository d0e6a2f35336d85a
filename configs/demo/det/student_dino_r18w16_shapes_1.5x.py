# DETR study convergence check: the baseline student at 1.5 x its schedule (90 epochs). A
# difference from the 60-epoch baseline below one seed standard deviation says that the students
# are compared against a baseline that has converged.
_base_ = './student_dino_r18w16_shapes.py'

max_epochs = 90
train_cfg = dict(max_epochs=max_epochs, val_interval=9)  # the same 10 points of the curves
param_scheduler = [dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
                        milestones=[75], gamma=0.1)]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
