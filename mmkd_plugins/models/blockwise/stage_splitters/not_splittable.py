"""Backbone families whose forward is not a sequence of stages, with the structural reason that
block-wise distillation states when asked to split one."""

from ..backbone_stages import register_not_splittable

register_not_splittable(
    'mmpretrain.models.backbones.hrnet.HRNet',
    'parallel branches at four resolutions exchange features in every stage, so no stage has '
    'one state at one stride')
register_not_splittable(
    'mmdet.models.backbones.hrnet.HRNet',
    'parallel branches at four resolutions exchange features in every stage, so no stage has '
    'one state at one stride')
register_not_splittable(
    'mmdet.models.backbones.hourglass.HourglassNet',
    "every stack's output is returned and the next stack also reads the previous stack's "
    "input, so no module's output is all that the rest of the forward reads")
register_not_splittable(
    'mmpretrain.models.backbones.conformer.Conformer',
    'a convolutional and a transformer branch exchange features in every block, so the state '
    'between blocks is a pair of tensors')
register_not_splittable(
    'mmpretrain.models.backbones.tnt.TNT',
    'every layer carries and reads two token streams (pixel and patch tokens) and writes into '
    'its input in place')
register_not_splittable(
    'mmpretrain.models.backbones.revvit.RevVisionTransformer',
    'its reversible layers carry two streams, and in training they run in an autograd '
    'function that returns no gradient for a state fed in at a later stage')
