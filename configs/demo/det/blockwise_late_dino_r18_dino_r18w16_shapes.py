# DETR study block-wise distillation with the two late hybrids only (hybrids.stages=[3, 4]), the
# cheaper form the detection demo uses: N_3 runs the student's stages 1..3 and the teacher's last
# stage, neck, encoder and decoder; N_4 the whole student backbone and the teacher's neck, encoder
# and decoder.
_base_ = './blockwise_dino_r18_dino_r18w16_shapes.py'

model = dict(hybrids=dict(stages=[3, 4]))
