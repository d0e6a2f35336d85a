"""Stage splitters of convolutional backbones (mmpretrain and mmdet): stages end where the
resolution halves, four of them at strides 4, 8, 16 and 32 where the family has them (so that a
ResNet teacher pairs with any of them); a family with a stride-2 level folds it into stage 1."""

from typing import Any, List, Tuple

from torch import nn

from ..backbone_stages import BackboneStages, register_stage_splitter
from .layer_grouping import (absolute_indices, check_outputs_at_stage_ends,
                             ends_before_downsampling, group_into_stages, module_stride,
                             split_layer_chain)


@register_stage_splitter('mmpretrain.models.backbones.resnet.ResNet')
@register_stage_splitter('mmdet.models.backbones.resnet.ResNet')
def split_resnet(backbone: Any) -> BackboneStages:
    """ResNet, ResNetV1c/V1d, ResNeXt, SE-ResNet, ResNet_CIFAR (mmpretrain) and ResNet, ResNeXt
    (mmdet): one stage per residual layer (``layer1`` ...

    ``layer4``); the stem (``conv1``, its norm and ReLU, or the deep ``stem``, and ``maxpool`` where
    there is one) feeds only ``layer1``.
    """
    if getattr(backbone, 'deep_stem', False):
        stem: Tuple[str, ...] = ('stem', )
    else:
        stem = ('conv1', backbone.norm1_name, 'relu')
    if isinstance(getattr(backbone, 'maxpool', None), nn.Module):
        stem += ('maxpool', )
    return BackboneStages(stages=tuple((name, ) for name in backbone.res_layers),
                          stem=stem)


MOBILENET_V2_STAGE_ENDS = (1, 2, 4, 7)


@register_stage_splitter('mmpretrain.models.backbones.mobilenet_v2.MobileNetV2')
@register_stage_splitter('mmdet.models.backbones.mobilenet_v2.MobileNetV2')
def split_mobilenet_v2(backbone: Any) -> BackboneStages:
    """MobileNetV2 (mmpretrain): four stages ending where ResNet's do, at strides 4, 8, 16, 32:

    (layer1, layer2), (layer3), (layer4, layer5), (layer6, layer7, conv2).
    """
    layers = tuple(backbone.layers)  # layer1 ... layer7, conv2
    check_outputs_at_stage_ends(backbone.out_indices,
                                MOBILENET_V2_STAGE_ENDS, 'MobileNetV2')
    return BackboneStages(stages=group_into_stages(layers, MOBILENET_V2_STAGE_ENDS),
                          stem=('conv1', ))


@register_stage_splitter('mmpretrain.models.backbones.convnext.ConvNeXt')
def split_convnext(backbone: Any) -> BackboneStages:
    """ConvNeXt v1 and v2 (one class, v2 sets ``use_grn``) and SparseConvNeXt (mmpretrain): one
    stage per ConvNeXt stage, each after its downsampling layer: (stages.0), (downsample_layers.1,
    stages.1), ...

    at strides 4, 8, 16, 32; the patchify stem ``downsample_layers.0`` feeds only stage 1. The
    output norms and pooling stay in the forward.
    """
    num_stages = len(backbone.stages)
    stages = [('stages.0', )] + [(f'downsample_layers.{i}', f'stages.{i}')
                                 for i in range(1, num_stages)]
    return BackboneStages(stages=tuple(stages), stem=('downsample_layers.0', ))


@register_stage_splitter('mmpretrain.models.backbones.edgenext.EdgeNeXt')
def split_edgenext(backbone: Any) -> BackboneStages:
    """EdgeNeXt (mmpretrain): as ConvNeXt, (stages.0), (downsample_layers.1, stages.1), ...

    at strides 4, 8, 16, 32; the stem ``downsample_layers.0`` feeds only stage 1.

    Raises:
        ValueError: with ``use_pos_embd_global``, whose forward adds a positional encoding to
            stage 1's output in place, after the stage module returned it.
    """
    if getattr(backbone, 'pos_embed', None) is not None:
        raise ValueError('EdgeNeXt with use_pos_embd_global=True adds a positional encoding to '
                         "stage 1's output in place after the stage returns it, so stage 1's "
                         'output is not what stage 2 reads; block-wise distillation needs '
                         'use_pos_embd_global=False')
    return split_convnext(backbone)


@register_stage_splitter('mmpretrain.models.backbones.efficientnet.EfficientNet')
@register_stage_splitter('mmdet.models.backbones.efficientnet.EfficientNet')
def split_efficientnet(backbone: Any) -> BackboneStages:
    """EfficientNet and EfficientNet-EdgeTPU (mmpretrain and mmdet): ``layers.0`` is the stem
    (stride 2); stages end before each later stride-2 layer, so for B0-B8: (layers.1, layers.2),
    (layers.3), (layers.4), (layers.5, layers.6) at strides 4, 8, 16, 32 (mmdet builds layers only
    up to its largest out index, so it may have fewer stages)."""
    layers = backbone.layers
    layer_setting = backbone.layer_setting
    strides = [layer_setting[i][0][3] for i in range(len(layers))]
    return split_layer_chain([f'layers.{i}' for i in range(len(layers))], strides,
                             backbone.out_indices, 'EfficientNet')


@register_stage_splitter('mmpretrain.models.backbones.efficientnet_v2.EfficientNetV2')
def split_efficientnet_v2(backbone: Any) -> BackboneStages:
    """EfficientNetV2 (mmpretrain): ``layers.0`` is the stem (stride 2); stages end before each
    later stride-2 layer, e.g. for s and b0-b3: (layers.1, layers.2), (layers.3), (layers.4,
    layers.5), (layers.6, layers.7) at strides 4, 8, 16, 32."""
    arch = backbone.arch
    strides = [2] + [row[2] for row in arch]  # stem, the blocks' layers, the final conv
    layers = backbone.layers
    return split_layer_chain([f'layers.{i}' for i in range(len(layers))], strides,
                             backbone.out_indices, 'EfficientNetV2')


@register_stage_splitter('mmpretrain.models.backbones.mobilenet_v3.MobileNetV3')
def split_mobilenet_v3(backbone: Any) -> BackboneStages:
    """MobileNetV3 (mmpretrain): ``layer0`` is the stem (stride 2); stages end before each later
    stride-2 layer, at strides 4, 8, 16, 32: small (layer1), (layer2, layer3), (layer4 ...

    layer8), (layer9 ... layer12); large (layer1 ... layer3), (layer4 ... layer6), (layer7 ...
    layer12), (layer13 ... layer16).
    """
    names = backbone.layers
    setting = backbone.arch_settings[backbone.arch]
    strides = [2] + [row[5] for row in setting] + [1]
    return split_layer_chain(names, strides, backbone.out_indices,
                             'MobileNetV3')


@register_stage_splitter('mmpretrain.models.backbones.shufflenet_v1.ShuffleNetV1')
def split_shufflenet_v1(backbone: Any) -> BackboneStages:
    """ShuffleNetV1 (mmpretrain): it has no blocks at stride 4, so stage 1 is its stem (conv1,
    maxpool), then one stage per layer: (layers.0), (layers.1), (layers.2) at strides 8, 16, 32
    (four stages, as a ResNet's)."""
    num_layers = len(backbone.layers)
    return BackboneStages(stages=(('conv1', 'maxpool'), ) + tuple(
        (f'layers.{i}', ) for i in range(num_layers)))


@register_stage_splitter('mmpretrain.models.backbones.shufflenet_v2.ShuffleNetV2')
def split_shufflenet_v2(backbone: Any) -> BackboneStages:
    """ShuffleNetV2 (mmpretrain): it has no blocks at stride 4, so stage 1 is its stem (conv1,
    maxpool); then (layers.0), (layers.1), (layers.2, layers.3) at strides 8, 16, 32 (``layers.3``
    is the final 1x1 conv)."""
    check_outputs_at_stage_ends(
        absolute_indices(backbone.out_indices, 4), (0, 1, 3),
        'ShuffleNetV2')
    return BackboneStages(stages=(('conv1', 'maxpool'), ('layers.0', ), ('layers.1', ),
                                  ('layers.2', 'layers.3')))


@register_stage_splitter('mmpretrain.models.backbones.vgg.VGG')
def split_vgg(backbone: Any) -> BackboneStages:
    """VGG (mmpretrain): each VGG block's convs end in a stride-2 max-pool, so block i returns
    stride 2^(i+1); stages: (block 0, block 1), (block 2), (block 3), (block 4) at strides 4, 8, 16,
    32 (each block being its ``features.*`` modules).

    The classifier stays in the forward; with one (``num_classes > 0``) the backbone is built for
    one input size, as its first linear layer reads a 7 × 7 map: 7·2^p for p max-pools (224 × 224
    with all five).
    """
    ranges = backbone.range_sub_modules
    blocks = [tuple(f'features.{j}' for j in range(start, end)) for start, end in ranges]
    ends = list(range(min(1, len(blocks) - 1), len(blocks)))
    outputs = [index for index in absolute_indices(backbone.out_indices,
                                                   len(blocks)) if index < len(blocks)]
    check_outputs_at_stage_ends(outputs, ends, 'VGG')
    stages = [sum(blocks[:ends[0] + 1], ())] + [blocks[end] for end in ends[1:]]
    side = 7 * 2**sum(isinstance(layer, nn.MaxPool2d) for layer in backbone.features)
    return BackboneStages(stages=tuple(stages),
                          input_size=(side, side) if backbone.num_classes > 0 else None)


@register_stage_splitter('mmpretrain.models.backbones.lenet.LeNet5')
def split_lenet5(backbone: Any) -> BackboneStages:
    """LeNet5 (mmpretrain): its three convolutions with their tanh, the second and third after
    an average pool: (features.0, 1), (features.2 ... 4), (features.5 ... 7) at strides 1, 2, 4,
    so it pairs with a three-stage backbone (another LeNet-5). It takes one-channel images; with
    a classifier (``num_classes > 0``) it is built for 32 × 32, where the last convolution
    leaves 1 × 1 for its first linear layer."""
    return BackboneStages(
        stages=(('features.0', 'features.1'), ('features.2', 'features.3', 'features.4'),
                ('features.5', 'features.6', 'features.7')),
        input_size=(32, 32) if backbone.num_classes > 0 else None,
        input_channels=backbone.features[0].in_channels)


@register_stage_splitter('mmpretrain.models.backbones.repvgg.RepVGG')
def split_repvgg(backbone: Any) -> BackboneStages:
    """RepVGG (mmpretrain): one stage per RepVGG stage (stage_1 ...

    stage_4, strides 4, 8, 16, 32); the last includes ``ppf`` (the optional MTSPPF, else an
    identity); ``stem`` feeds only stage 1.
    """
    names = backbone.stages
    stages = [(name, ) for name in names[:-1]] + [(names[-1], 'ppf')]
    return BackboneStages(stages=tuple(stages), stem=('stem', ))


@register_stage_splitter('mmpretrain.models.backbones.mobileone.MobileOne')
def split_mobileone(backbone: Any) -> BackboneStages:
    """MobileOne (mmpretrain): one stage per MobileOne stage (stage1 ...

    stage4, strides 4, 8, 16, 32); ``stage0`` is the stem.
    """
    return BackboneStages(stages=tuple((name, ) for name in backbone.stages),
                          stem=('stage0', ))


@register_stage_splitter('mmpretrain.models.backbones.cspnet.CSPNet')
def split_cspnet(backbone: Any) -> BackboneStages:
    """CSPNet, CSPDarkNet, CSPResNet, CSPResNeXt (mmpretrain): CSP stages grouped so that each
    stage ends before the next downsampling CSP stage: CSPDarkNet-53 (stride-1 stem, five
    stride-2 stages) gives (stages.0, stages.1), (stages.2), (stages.3), (stages.4);
    CSPResNet/CSPResNeXt (stride-4 stem) give (stages.0) ... (stages.3); strides 4, 8, 16, 32.
    ``stem`` feeds only stage 1."""
    has_downsampler = backbone.arch['has_downsampler']
    strides = [2 if down else 1 for down in has_downsampler]
    ends = ends_before_downsampling(strides,
                                    input_stride=module_stride(backbone.stem))
    num_stages = len(backbone.stages)
    check_outputs_at_stage_ends(
        absolute_indices(backbone.out_indices, num_stages), ends,
        type(backbone).__name__)
    return BackboneStages(
        stages=group_into_stages([f'stages.{i}' for i in range(num_stages)], ends),
        stem=('stem', ))


@register_stage_splitter('mmpretrain.models.backbones.densenet.DenseNet')
def split_densenet(backbone: Any) -> BackboneStages:
    """DenseNet (mmpretrain): a dense block concatenates its layers' outputs inside itself, so the
    network is a chain of dense blocks and transitions; one stage per dense block, ending with it
    (before the transition's 2x2 average pool): (stages.0), (transitions.0, stages.1),
    (transitions.1, stages.2), (transitions.2, stages.3, transitions.3) at strides 4, 8, 16, 32.

    Out index i < 3 (a transition's output) is inside stage i + 2, so only the last is allowed.
    """
    num_stages = len(backbone.stages)
    check_outputs_at_stage_ends(
        absolute_indices(backbone.out_indices, num_stages),
        (num_stages - 1, ), 'DenseNet')
    stages: List[tuple] = [('stages.0', )] + [(f'transitions.{i - 1}', f'stages.{i}')
                                              for i in range(1, num_stages)]
    stages[-1] += (f'transitions.{num_stages - 1}', )  # the final norm and activation
    return BackboneStages(stages=tuple(stages), stem=('stem', ))


@register_stage_splitter('mmpretrain.models.backbones.replknet.RepLKNet')
def split_replknet(backbone: Any) -> BackboneStages:
    """RepLKNet (mmpretrain): one stage per RepLKNet stage, each after the transition that
    downsamples into it: (stages.0), (transitions.0, stages.1), ... at strides 4, 8, 16, 32;
    the stem (stem.0 ... stem.3) feeds only stage 1. The outputs' norms (``stages.i.norm``) stay
    in the forward."""
    num_stages = len(backbone.stages)
    stages = [('stages.0', )] + [(f'transitions.{i - 1}', f'stages.{i}')
                                 for i in range(1, num_stages)]
    stem = tuple(f'stem.{i}' for i in range(len(backbone.stem)))
    return BackboneStages(stages=tuple(stages), stem=stem)


@register_stage_splitter('mmpretrain.models.backbones.repmlp.RepMLPNet')
def split_repmlp(backbone: Any) -> BackboneStages:
    """RepMLPNet (mmpretrain): one stage per RepMLP stage, each after the layer that downsamples
    into it: (stages.0), (downsample_layers.0, stages.1), ... at strides 4, 8, 16, 32. Out
    index i < 3 (a downsampling layer's output) is inside stage i + 2, so only the last is
    allowed. (The patch embedding returns a tuple, so it is not skipped as a stem.)"""
    num_stages = len(backbone.stages)
    check_outputs_at_stage_ends(
        absolute_indices(backbone.out_indice, num_stages),
        (num_stages - 1, ), 'RepMLPNet')
    stages = [('stages.0', )] + [(f'downsample_layers.{i - 1}', f'stages.{i}')
                                 for i in range(1, num_stages)]
    return BackboneStages(stages=tuple(stages))


@register_stage_splitter('mmpretrain.models.backbones.convmixer.ConvMixer')
def split_convmixer(backbone: Any) -> BackboneStages:
    """ConvMixer (mmpretrain): isotropic (every layer at the patch stride), so no resolution change
    marks stages; the depth is cut into four equal runs of ``stages.*`` layers (as for an isotropic
    ViT); ``stem`` (the patch embedding) feeds only stage 1."""
    depth = len(backbone.stages)
    if depth < 4:
        raise ValueError(f'ConvMixer of depth {depth} has fewer layers than the 4 stages '
                         'block-wise distillation cuts it into')
    ends = [round(depth * (k + 1) / 4) - 1 for k in range(4)]
    check_outputs_at_stage_ends(
        absolute_indices(backbone.out_indices, depth), ends, 'ConvMixer')
    return BackboneStages(stages=group_into_stages([f'stages.{i}' for i in range(depth)], ends),
                          stem=('stem', ))


@register_stage_splitter('mmpretrain.models.backbones.inception_v3.InceptionV3')
def split_inception_v3(backbone: Any) -> BackboneStages:
    """InceptionV3 (mmpretrain): four stages ending before each downsampling, at strides 4, 8, 16,
    32: (Conv2d_2a_3x3 ...

    Conv2d_4a_3x3), (maxpool2, Mixed_5b ... Mixed_5d), (Mixed_6a ... Mixed_6e), (Mixed_7a ...
    Mixed_7c); ``Conv2d_1a_3x3`` is the stem. The auxiliary logits (training only) read stage 3's
    state; pooling and fc stay in the forward.
    """
    return BackboneStages(
        stages=(('Conv2d_2a_3x3', 'Conv2d_2b_3x3', 'maxpool1', 'Conv2d_3b_1x1', 'Conv2d_4a_3x3'),
                ('maxpool2', 'Mixed_5b', 'Mixed_5c', 'Mixed_5d'),
                ('Mixed_6a', 'Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e'),
                ('Mixed_7a', 'Mixed_7b', 'Mixed_7c')),
        stem=('Conv2d_1a_3x3', ))


# mmpretrain Res2Net, ResNeSt, ResNeXt, SEResNet, SEResNeXt, ResNetV1c/V1d: subclasses of
# mmpretrain ResNet with its forward: split_resnet applies (no splitter needed). RegNet
# (mmpretrain and mmdet) is a ResNet subclass whose forward only drops the max-pool:
# split_resnet applies too (it adds ``maxpool`` to the stem only where there is one).

@register_stage_splitter('mmdet.models.backbones.csp_darknet.CSPDarknet')
@register_stage_splitter('mmdet.models.backbones.cspnext.CSPNeXt')
def split_csp_darknet(backbone: Any) -> BackboneStages:
    """CSPDarknet (YOLOX) and CSPNeXt (RTMDet) (mmdet): after a stride-2 stem, every stage (stride-2
    conv, SPP on the last, CSP layer) halves the resolution: one stage per ``stageN``, at strides 4,
    8, 16, 32 (and 64 for P6).

    Out index 0 (the stem) is refused.
    """
    names = backbone.layers  # 'stem', 'stage1', ...
    check_outputs_at_stage_ends(absolute_indices(backbone.out_indices,
                                                 len(names)),
                                tuple(range(1, len(names))), type(backbone).__name__)
    return BackboneStages(stages=tuple((name, ) for name in names[1:]), stem=(names[0], ))


@register_stage_splitter('mmdet.models.backbones.ssd_vgg.SSDVGG')
def split_ssd_vgg(backbone: Any) -> BackboneStages:
    """SSDVGG (mmdet): ``features.*`` run in turn; stages end before each stride-2 max-pool from
    stride 4 on, the last ending with fc7: for VGG-16, (features.0 ...

    15), (16 ... 22), (23 ... 34) at strides 4, 8, 16 (conv4_3 and fc7, the SSD outputs, end stages
    2 and 3). The backbone has no stride-32 level, so it has three stages.
    """
    features = backbone.features
    strides = [module_stride(module) for module in features]
    ends = ends_before_downsampling(strides)
    check_outputs_at_stage_ends(
        absolute_indices(backbone.out_feature_indices, len(features)),
        ends, 'SSDVGG')
    return BackboneStages(
        stages=group_into_stages([f'features.{i}' for i in range(len(features))], ends))


@register_stage_splitter('mmdet.models.backbones.detectors_resnet.DetectoRS_ResNet')
def split_detectors_resnet(backbone: Any) -> BackboneStages:
    """DetectoRS_ResNet and DetectoRS_ResNeXt (mmdet) without ``output_img`` (SAC only): as ResNet,
    (layer1) ... (layer4).

    Raises:
        ValueError: with ``output_img=True`` (the RFP configs): the forward returns its input
            image, which the RFP neck reads to run the backbone again with fed-back features.
    """
    if getattr(backbone, 'output_img', False):
        raise ValueError('DetectoRS_ResNet with output_img=True returns its input image for the '
                         'recursive feature pyramid (RFP) neck, which runs the backbone again on '
                         'it; the forward after a stage reads the image, so it cannot be cut '
                         'into stages')
    return split_resnet(backbone)


# mmdet Res2Net, ResNeSt, ResNeXt, ResNetV1d, RegNet: subclasses of mmdet ResNet with its
# forward (RegNet's without the max-pool): split_resnet applies (no splitter needed).
