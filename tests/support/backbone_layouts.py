"""Small versions of the stock configs of each stage layout block-wise distillation meets: CNN maps
(ConvNeXt), plain tokens with a class token (DeiT), tokens with (class, distillation) token pairs
(DeiT distilled), a hierarchical transformer whose stages pass (tokens, (H, W)) (Swin), and a
detector's backbone (RTMDet's CSPNeXt)."""

from typing import Any, Tuple

import torch
from mmengine.model import BaseModule
from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.registry import MODELS
from torch import nn

from mmkd_plugins.models.blockwise import BackboneStages, register_stage_splitter
from mmkd_plugins.models.teachers import load_model_config

SMALL_HEAD = {'model.head.num_classes': 10, 'model.train_cfg': None}
SMALL_VIT = dict(img_size=32, patch_size=8, drop_path_rate=0.1,
                 arch=dict(embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64))
LAYOUTS = {
    'maps-convnext': ('mmpretrain::convnext/convnext-tiny_32xb128_in1k.py', {
        'model.backbone': dict(_delete_=True, type='ConvNeXt', drop_path_rate=0.1,
                               arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32])),
        'model.head.in_channels': 32, **SMALL_HEAD}),
    'tokens-deit': ('mmpretrain::deit/deit-tiny_4xb256_in1k.py', {
        'model.backbone': dict(_delete_=True, type='VisionTransformer', **SMALL_VIT),
        'model.head.in_channels': 32, **SMALL_HEAD}),
    'two-tokens-deit-distilled': ('mmpretrain::deit/deit-tiny-distilled_4xb256_in1k.py', {
        'model.backbone': dict(_delete_=True, type='DistilledVisionTransformer', **SMALL_VIT),
        'model.head.in_channels': 32, **SMALL_HEAD}),
    'hierarchical-swin': ('mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py', {
        'model.backbone': dict(_delete_=True, type='SwinTransformer', img_size=32,
                               window_size=2, pad_small_map=True, drop_path_rate=0.1,
                               arch=dict(embed_dims=8, depths=[1, 1, 1, 1],
                                         num_heads=[1, 1, 1, 1])),
        'model.head.in_channels': 64, **SMALL_HEAD}),
    'detector-rtmdet': ('mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py', {
        'model.backbone.widen_factor': 0.125, 'model.backbone.init_cfg': None,
        'model.neck.in_channels': [32, 64, 128], 'model.neck.out_channels': 32,
        'model.bbox_head.in_channels': 32, 'model.bbox_head.feat_channels': 32,
        'model.bbox_head.num_classes': 3}),
}


def model_cfg(layout: str, **overrides) -> dict:
    config, options = LAYOUTS[layout]
    cfg = load_model_config(config, 'test', options)
    # (mmpretrain's configs set the data preprocessor beside the model, mmdet's in it)
    preprocessor = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
    return dict(cfg.model, data_preprocessor=preprocessor, **overrides)




class TokensAsMap(nn.Module):
    """(B, H·W, C) tokens on an (H, W) grid -> the (B, C, H, W) map."""

    def forward(self, tokens: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)


@MODELS.register_module()
class SwinWithMapStates(BaseModule):
    """mmpretrain's SwinTransformer (under ``swin.``) whose stage states are (B, C, H, W) maps: each
    stage's tokens are laid out as a map by ``views.i``, and the forward goes on from that map.

    The same network as the Swin of the same arguments, with the same outputs, in the other
    layout: a student or teacher for exact tests of the change between maps and tokens.
    """

    def __init__(self, **swin_args: Any) -> None:
        super().__init__()
        self.swin = SwinTransformer(**swin_args)
        self.views = nn.ModuleList(TokensAsMap() for _ in self.swin.stages)

    def forward(self, x: torch.Tensor) -> tuple:
        swin = self.swin
        tokens, grid = swin.patch_embed(x)
        tokens = swin.drop_after_pos(tokens)
        outputs = []
        for index, stage in enumerate(swin.stages):
            tokens, grid = stage(tokens, grid, do_downsample=False)
            feature_map = self.views[index](tokens, grid)
            tokens, grid = feature_map.flatten(2).transpose(1, 2), tuple(feature_map.shape[2:])
            if index in swin.out_indices:
                normed = getattr(swin, f'norm{index}')(tokens)
                outputs.append(normed.transpose(1, 2).reshape(feature_map.shape))
            if stage.downsample is not None:
                tokens, grid = stage.downsample(tokens, grid)
        return tuple(outputs)


@register_stage_splitter(f'{SwinWithMapStates.__module__}.SwinWithMapStates')
def split_swin_with_map_states(backbone: SwinWithMapStates) -> BackboneStages:
    """Stage i: the Swin's blocks of stage i and the view that lays them out as a map."""
    return BackboneStages(stages=tuple((f'swin.stages.{index}', f'views.{index}')
                                       for index in range(len(backbone.views))))
