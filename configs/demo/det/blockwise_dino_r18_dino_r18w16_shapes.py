# DETR study block-wise distillation, all four hybrids: the KD student's config plus the hybrids.
# Hybrid N_i runs the student's backbone stages 1..i (16/32/64/128 channels), 1x1 conv + BN
# connectors into the teacher's (64/128/256/512) for stage i and every earlier stage the neck
# reads, then the teacher's later stages, neck and encoder, and its decoder on the teacher's
# distillation boxes. No hybrid task losses (a DETR's head losses match its own queries);
# d = KD as the KD run's; alpha = beta = gamma = 1.
_base_ = './kd_dino_r18_dino_r18w16_shapes.py'

model = dict(
    type='mmkd_plugins.BlockwiseDistiller',
    hybrids=dict(connector=dict(type='mmkd_plugins.ConvBNConnector'), task_losses=False))
