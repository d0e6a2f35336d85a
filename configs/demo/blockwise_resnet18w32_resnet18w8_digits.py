# Demo block-wise distillation: the baseline student's config plus a teacher, a loss and the
# hybrids. Hybrids N_1..N_4 run the student's first i stages (8/16/32/64 channels), a learned
# 1x1 conv + BN connector into the teacher's (32/64/128/256), then the teacher's later stages
# and head. d = KD at the KD demo's tau; alpha = beta = gamma = 1.
_base_ = ['./student_resnet18w8_digits.py', '../_base_/distillation_runtime.py']

model = dict(
    _delete_=True,
    type='mmkd_plugins.BlockwiseDistiller',
    student={{_base_.model}},
    teacher=dict(
        config='configs/demo/teacher_resnet18w32_digits.py',
        checkpoint='work_dirs/digits_demo/teacher.pth'),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=4.0, loss_weight=1.0)),
    hybrids=dict(connector=dict(type='mmkd_plugins.ConvBNConnector')))
default_hooks = {{_base_.distillation_hooks}}  # merged with the stock default_hooks
