# Detection demo block-wise distillation: the baseline student's config plus a teacher, a loss
# and the hybrids. Hybrid N_i runs the student's backbone stages 1..i (16/32/64/128 channels),
# 1x1 conv + BN connectors into the teacher's (64/128/256/512) for stage i and every earlier
# stage the FPN reads, then the teacher's later stages, FPN and head. d = the DIST demo's
# sigmoid DIST; alpha = beta = gamma = 1.
_base_ = ['./student_retinanet_r18w16_shapes.py', '../../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/det/teacher_retinanet_r18_shapes.py',
        checkpoint='work_dirs/shapes_demo/teacher.pth'),
    distill_losses=dict(loss_dist=dict(
        type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0, activation='sigmoid')),
    hybrids=dict(connector=dict(type='mmkd_plugins.ConvBNConnector')))
default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
