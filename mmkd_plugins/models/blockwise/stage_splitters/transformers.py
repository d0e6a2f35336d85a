"""Stage splitters of transformer and MLP backbones (mmpretrain and mmdet).

Hierarchical families have one stage per resolution (four, where the family has four); plain token
backbones (a ``layers`` list of equal transformer layers) have four equal groups of layers, with a
stage also ending at every layer the backbone outputs (:func:`plain_stage_ends`). Subclasses use
their closest registered base class's splitter: DistilledVisionTransformer (DeiT), DeiT3, ViTEVA02
(their own ``forward``, the same layer loop) and MoCoV3ViT (inherited ``forward``) use
VisionTransformer's; PyramidVisionTransformerV2 uses PyramidVisionTransformer's; SVT uses PCPVT's.
The masked pre-training backbones MAEViT, MaskFeatViT, SimMIMSwinTransformer mask their input when
called as ``backbone(x)`` (or need a mask), so the stage check refuses them.
"""

import math
from typing import Any

import torch
from torch import nn

from ..backbone_stages import BackboneStages, register_stage_splitter
from .layer_grouping import (check_outputs_at_stage_ends, group_into_stages, plain_stages,
                             resolution_stage_ends)

# ---------------------------------------------------------------------------------- plain ViTs


@register_stage_splitter('mmpretrain.models.backbones.vision_transformer.VisionTransformer')
def split_vision_transformer(backbone: Any) -> BackboneStages:
    """VisionTransformer and its subclasses DistilledVisionTransformer (DeiT), DeiT3, ViTEVA02,
    MoCoV3ViT (mmpretrain): four equal groups of ``layers``, and a stage end at every out index.

    The patch embedding, class tokens and position embedding run in every hybrid (they give the
    patch grid the outputs are shaped by); the final norm and output formatting follow the last
    stage.
    """
    return BackboneStages(stages=plain_stages('layers', len(backbone.layers),
                                              backbone.out_indices))


@register_stage_splitter('mmpretrain.models.backbones.beit.BEiTViT')
def split_beit(backbone: Any) -> BackboneStages:
    """BEiTViT (mmpretrain, the BEiT and BEiT v2 classifiers' backbone): four equal groups of
    ``layers`` and a stage end at every out index, as VisionTransformer (the shared relative
    position bias the layers also take is computed before them, from parameters only)."""
    return BackboneStages(stages=plain_stages('layers', len(backbone.layers),
                                              backbone.out_indices))


@register_stage_splitter('mmpretrain.models.backbones.t2t_vit.T2T_ViT')
def split_t2t_vit(backbone: Any) -> BackboneStages:
    """T2T_ViT (mmpretrain): four equal groups of the ``encoder`` layers and a stage end at every
    out index; the tokens-to-token module runs in every hybrid (it gives the patch grid)."""
    return BackboneStages(stages=plain_stages('encoder', len(backbone.encoder),
                                              backbone.out_indices))


@register_stage_splitter('mmpretrain.models.backbones.mlp_mixer.MlpMixer')
def split_mlp_mixer(backbone: Any) -> BackboneStages:
    """MlpMixer (mmpretrain): four equal groups of ``layers`` and a stage end at every out index."""
    return BackboneStages(stages=plain_stages('layers', len(backbone.layers),
                                              backbone.out_indices))


@register_stage_splitter('mmpretrain.models.backbones.xcit.XCiT')
def split_xcit(backbone: Any) -> BackboneStages:
    """XCiT (mmpretrain): four equal groups of the cross-covariance layers (``xca_layers``) and a
    stage end at every out index among them (XCiT numbers its layers over ``xca_layers`` and then
    ``ca_layers``).

    The class-attention layers are in no stage: they run after the last,
    like a head (the forward joins the class token to the last stage's tokens before them, so
    no stage can hold layers on both sides of that join), and their outputs are computed from
    the last stage's state.
    """
    num_xca = len(backbone.xca_layers)
    num_layers = num_xca + len(backbone.ca_layers)
    out_indices = [index + num_layers if index < 0 else index
                   for index in backbone.out_indices]
    return BackboneStages(stages=plain_stages(
        'xca_layers', num_xca, [index for index in out_indices if index < num_xca]))


@register_stage_splitter('mmpretrain.models.backbones.vig.Vig')
def split_vig(backbone: Any) -> BackboneStages:
    """Vig (isotropic, mmpretrain): four equal groups of ``blocks`` and a stage end at every out
    index.

    No stem is skipped: the forward adds the position embedding to the stem's
    output. It is built for one input size: its position embedding is a (1, C, h, w) map
    added to the stride-16 stem output, so the input is 16·h × 16·w (224 × 224 in
    mmpretrain).
    """
    height, width = backbone.pos_embed.shape[-2:]
    return BackboneStages(stages=plain_stages('blocks', len(backbone.blocks),
                                              backbone.out_indices),
                          input_size=(16 * height, 16 * width))


@register_stage_splitter('mmpretrain.models.backbones.hivit.HiViT')
def split_hivit(backbone: Any) -> BackboneStages:
    """HiViT (mmpretrain): four equal groups of the main (stride-16 attention) blocks and a stage
    end at every out index, numbered over the main blocks as HiViT does; the first stage also holds
    the hierarchical MLP blocks before them. Its two PatchMerge layers run in every hybrid (they
    give the shapes the main blocks' tokens are taken from); a split at the MLP blocks' resolutions
    is not offered, as their states are (B, N, 4, 4, C) 5-d tokens that no connector maps.

    Raises:
        ValueError: an out index falls among the MLP blocks (HiViT then also outputs one of
            them, inside the first stage).
    """
    blocks = backbone.blocks
    num_main = backbone.num_main_blocks
    num_pre = len(blocks) - num_main
    # the forward matches i in out_indices as given: negative indices are never output
    out_indices = [index for index in backbone.out_indices if index >= 0]
    if any(index < num_pre for index in out_indices):
        raise ValueError(f'HiViT out_indices {tuple(out_indices)}: HiViT matches each index '
                         f'against its first {num_pre} (MLP and patch merging) blocks too, and '
                         'so also returns one from inside the first stage; block-wise '
                         f'distillation needs out_indices >= {num_pre}')
    main = plain_stages('blocks', num_main, out_indices)
    main = tuple(tuple(f'blocks.{num_pre + int(name.split(".")[1])}' for name in stage)
                 for stage in main)
    pre = tuple(f'blocks.{k}' for k in range(num_pre)
                if type(blocks[k]).__name__ != 'PatchMerge')
    # it is built for one input size, its patch embedding's (other sizes fail in its blocks)
    height, width = backbone.patch_embed.img_size
    return BackboneStages(stages=(pre + main[0], ) + main[1:], input_size=(height, width))


# ------------------------------------------------------------------------ hierarchical families


@register_stage_splitter('mmpretrain.models.backbones.swin_transformer.SwinTransformer')
@register_stage_splitter('mmpretrain.models.backbones.swin_transformer_v2.SwinTransformerV2')
@register_stage_splitter('mmpretrain.models.backbones.davit.DaViT')
def split_swin(backbone: Any) -> BackboneStages:
    """SwinTransformer, SwinTransformerV2 and DaViT (mmpretrain): one stage per block sequence
    (``stages.0`` ...), whose state is its tokens and their (H, W).

    With
    ``out_after_downsample=False`` (Swin, DaViT) the forward runs the stage's patch merging
    after the stage (the stand-in lends it the original ``downsample``), so the state is at
    the stage's own resolution.
    """
    return BackboneStages(stages=tuple((f'stages.{k}', ) for k in range(len(backbone.stages))))


@register_stage_splitter('mmpretrain.models.backbones.mixmim.MixMIMTransformer')
def split_mixmim(backbone: Any) -> BackboneStages:
    """MixMIMTransformer (mmpretrain): one stage per layer of ``layers`` (each ends with its patch
    merging, the last with none); the final norm and pooling follow the last stage."""
    return BackboneStages(stages=tuple((f'layers.{k}', ) for k in range(len(backbone.layers))))


@register_stage_splitter('mmdet.models.backbones.swin.SwinTransformer')
def split_mmdet_swin(backbone: Any) -> BackboneStages:
    """SwinTransformer (mmdet): one stage per resolution, the blocks of ``stages.i``.

    mmdet's stage returns its merged tokens with the unmerged ones, (x_down, hw_down, x, hw), two
    token tensors a stage state cannot be (a connector maps one); cut at the blocks instead, the
    stage module runs its patch merging on the last block's (B, H·W, C) tokens, and the grid (H, W)
    comes from the patch embedding and merges, which run in every hybrid.
    """
    return BackboneStages(stages=tuple(
        tuple(f'stages.{i}.blocks.{k}' for k in range(len(stage.blocks)))
        for i, stage in enumerate(backbone.stages)))


@register_stage_splitter('mmdet.models.backbones.pvt.PyramidVisionTransformer')
def split_mmdet_pvt(backbone: Any) -> BackboneStages:
    """PyramidVisionTransformer and PyramidVisionTransformerV2 (mmdet): one stage per resolution,
    the encoder layers (after the absolute position embedding, PVT v1) and the norm of ``layers.i``.

    Each resolution's overlapping patch embedding (``layers.i.0``) runs in
    every hybrid: it returns the (H, W) the forward reshapes the stage's (B, H·W, C) tokens
    with.
    """
    return BackboneStages(stages=tuple(
        tuple(f'layers.{i}.1.{k}' for k in range(len(layer[1]))) + (f'layers.{i}.2', )
        for i, layer in enumerate(backbone.layers)))


@register_stage_splitter('mmpretrain.models.backbones.van.VAN')
def split_van(backbone: Any) -> BackboneStages:
    """VAN (mmpretrain): one stage per resolution, its blocks and norm.

    Each resolution's patch embedding (``patch_embed{i}``) runs in every hybrid: it returns the (H,
    W) the forward reshapes the stage's normed (B, H·W, C) tokens with.
    """
    return BackboneStages(stages=tuple(
        tuple(f'blocks{i}.{k}' for k in range(len(getattr(backbone, f'blocks{i}'))))
        + (f'norm{i}', ) for i in range(1, backbone.num_stages + 1)))


@register_stage_splitter('mmpretrain.models.backbones.twins.PCPVT')
def split_twins(backbone: Any) -> BackboneStages:
    """PCPVT and SVT (Twins, mmpretrain): one stage per resolution, its dropout, encoder layers,
    conditional position encoding (after the first layer) and norm; the patch embeddings run in
    every hybrid (they return the (H, W) the forward reshapes the stage's (B, H·W, C) tokens
    with)."""
    stages = []
    for i, layers in enumerate(backbone.stages):
        names = [f'position_encoding_drops.{i}']
        for k in range(len(layers)):
            names.append(f'stages.{i}.{k}')
            if k == 0:
                names.append(f'position_encodings.{i}')
        stages.append(tuple(names) + (f'norm_after_stage{i}', ))
    return BackboneStages(stages=tuple(stages))


@register_stage_splitter('mmpretrain.models.backbones.tinyvit.TinyViT')
def split_tinyvit(backbone: Any) -> BackboneStages:
    """TinyViT (mmpretrain): one stage per module of ``stages`` (each but the last ends with its
    patch merging); the patch embedding feeds only the first."""
    return BackboneStages(stages=tuple((f'stages.{k}', ) for k in range(len(backbone.stages))),
                          stem=('patch_embed', ))


LEVIT_PATCH_STRIDE = 16  # its convolutional patch embedding: four stride-2 convolutions


@register_stage_splitter('mmpretrain.models.backbones.levit.LeViT')
def split_levit(backbone: Any) -> BackboneStages:
    """LeViT (mmpretrain): three stages, one per module of ``stages`` (resolutions 16, 32, 64); the
    patch embedding feeds only the first.

    Its attention biases are built for one input size (``img_size``, not kept as an attribute): the
    first stage's resolution times the patch stride.
    """
    side = backbone.resolutions[0] * LEVIT_PATCH_STRIDE
    return BackboneStages(stages=tuple((f'stages.{k}', ) for k in range(len(backbone.stages))),
                          stem=('patch_embed', ), input_size=(side, side))


EFFICIENTFORMER_LAST_STRIDE = 32


@register_stage_splitter('mmpretrain.models.backbones.efficientformer.EfficientFormer')
def split_efficientformer(backbone: Any) -> BackboneStages:
    """EfficientFormer (mmpretrain): one stage per module of ``network`` (each starts with its
    downsampling; the last ends with the Meta3D attention blocks); the stem feeds only the first.

    Its attention biases (N × N, for a √N × √N map at stride 32) fix the input size.
    """
    biases = [module.attention_bias_idxs for module in backbone.modules()
              if isinstance(getattr(module, 'attention_bias_idxs', None), torch.Tensor)]
    side = math.isqrt(biases[0].shape[-1]) * EFFICIENTFORMER_LAST_STRIDE if biases else None
    return BackboneStages(stages=tuple((f'network.{k}', ) for k in range(len(backbone.network))),
                          stem=('patch_embed', ), input_size=(side, side) if side else None)


@register_stage_splitter('mmpretrain.models.backbones.poolformer.PoolFormer')
@register_stage_splitter('mmpretrain.models.backbones.riformer.RIFormer')
def split_poolformer(backbone: Any) -> BackboneStages:
    """PoolFormer and RIFormer (mmpretrain): one stage per block group of ``network``, each with the
    patch embedding that downsamples into it; the first patch embedding feeds only the first stage.

    Raises:
        ValueError: the backbone returns a downsampling layer's output (out index 1, 3 or 5),
            from inside a stage.
    """
    network = backbone.network
    ends = [k for k, module in enumerate(network) if isinstance(module, nn.Sequential)]
    check_outputs_at_stage_ends(backbone.out_indices, ends,
                                type(backbone).__name__)
    names = [f'network.{k}' for k in range(len(network))]
    return BackboneStages(stages=group_into_stages(names, ends), stem=('patch_embed', ))


@register_stage_splitter('mmpretrain.models.backbones.hornet.HorNet')
def split_hornet(backbone: Any) -> BackboneStages:
    """HorNet (mmpretrain): one stage per resolution, its downsampling layer and the blocks of
    ``stages.i`` (named one by one, so that ``with_cp``'s ``checkpoint_sequential`` still finds a
    Sequential); the stem (``downsample_layers.0``) feeds only the first."""
    return BackboneStages(stages=tuple(
        ((f'downsample_layers.{i}', ) if i else ()) + tuple(f'stages.{i}.{k}'
                                                            for k in range(len(stage)))
        for i, stage in enumerate(backbone.stages)),
                          stem=('downsample_layers.0', ))


@register_stage_splitter('mmpretrain.models.backbones.mobilevit.MobileViT')
def split_mobilevit(backbone: Any) -> BackboneStages:
    """MobileViT (mmpretrain): four stages ending where ResNet's do, at strides 4, 8, 16, 32 (for
    the stock archs (layers.0, layers.1), (layers.2), (layers.3), (layers.4, conv_1x1_exp)); the
    stem feeds only the first.

    Raises:
        ValueError: the backbone returns a layer from inside a stage (out index 0).
    """
    strides = [int(setting[2]) for setting in backbone.arch]
    ends = resolution_stage_ends(strides)
    check_outputs_at_stage_ends(backbone.out_indices, ends, 'MobileViT')
    names = [f'layers.{k}' for k in range(len(strides))]
    stages = group_into_stages(names, ends)
    return BackboneStages(stages=stages[:-1] + (stages[-1] + ('conv_1x1_exp', ), ),
                          stem=('stem', ))


@register_stage_splitter('mmpretrain.models.backbones.mvit.MViT')
def split_mvit(backbone: Any) -> BackboneStages:
    """MViT (mmpretrain): one stage per scale, the ``blocks`` up to each scale's last (its
    ``stage_indices``; a block returns its tokens and their (H, W))."""
    ends = sorted(backbone.stage_indices)
    names = [f'blocks.{k}' for k in range(len(backbone.blocks))]
    return BackboneStages(stages=group_into_stages(names, ends))


@register_stage_splitter('mmpretrain.models.backbones.vig.PyramidVig')
def split_pyramid_vig(backbone: Any) -> BackboneStages:
    """PyramidVig (mmpretrain): one stage per module of ``stages`` (each starts with its
    downsampling).

    No stem is skipped: the forward adds the position embedding to the stem's
    output.
    """
    return BackboneStages(stages=tuple((f'stages.{k}', ) for k in range(len(backbone.stages))))


# Not split (no splitter registered; their forward is not a sequence of stages whose state is
# one tensor, possibly with its shape):
#
# - Conformer (mmpretrain): a CNN branch and a transformer branch exchange features in every
#   ConvTransBlock (FCUDown into the tokens, FCUUp into the maps), so the state between blocks
#   is the pair (x, x_t); the stem output is also read by both conv_1 and trans_patch_conv.
# - TNT (mmpretrain): every TnTLayer carries two token streams, the inner pixel tokens
#   (B·N, 16, C_in) and the outer patch tokens (B, N + 1, C), and feeds the inner into the outer;
#   the next layer reads both, so a stage state would be a pair of tensors, of which a connector
#   maps only the first (the pixel tokens), leaving the other stream unmapped. Moreover each
#   TnTLayer writes into its input patch tokens in place (patch_embed[:, 1:] = ...), so a
#   recorded state is overwritten by the next layer (the stage check fails with a layer split).
# - RevVisionTransformer (mmpretrain): the reversible layers carry two streams (x1, x2) that the
#   next layer reads both of (a state would be a pair, as TNT's); and in training the layers
#   run inside the autograd Function RevBackProp, whose forward detaches and whose backward
#   recomputes the layers from the output with their own weights and returns a gradient for
#   the embedded input only, so no gradient would reach a student state fed at stage i (the
#   stand-ins' backward_pass would be the teacher layers' own).
