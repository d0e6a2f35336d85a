# Detection demo block-wise distillation with the two late hybrids only (hybrids.stages=[3, 4]):
# N_3 runs the student's stages 1..3 and the teacher's last stage, FPN and head; N_4 the whole
# student backbone and the teacher's FPN and head. About half the all-hybrids step
# (blockwise_retinanet_r18_retinanet_r18w16_shapes.py) on this demo, which is what lets the
# demo's block-wise row fit its budget; docs/demos.md compares the two.
_base_ = './blockwise_retinanet_r18_retinanet_r18w16_shapes.py'

model = dict(hybrids=dict(stages=[3, 4]))
