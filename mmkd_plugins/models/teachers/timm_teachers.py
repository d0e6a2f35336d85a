"""Teachers from timm, through mmpretrain's ``TimmClassifier``: their own preprocessing, input size
and class count, read from timm's description of the model (its ``pretrained_cfg``)."""

from typing import Optional, Tuple, cast

from mmengine.config import Config
from mmengine.logging import print_log
from torch import nn

from .hub_preprocessing import configured_preprocessing, set_hub_normalization

TIMM_CLASSIFIERS = ('TimmClassifier', 'mmpretrain.TimmClassifier')


def is_timm_config(model_cfg: dict) -> bool:
    """Whether a model config builds mmpretrain's ``TimmClassifier``."""
    return model_cfg.get('type') in TIMM_CLASSIFIERS


def fill_timm_preprocessing(config: Config, field: str) -> None:
    """Give a ``TimmClassifier`` teacher whose config does not normalize its inputs the
    normalization timm's weights were trained with, in place: ``mean``/``std`` of the model's
    ``pretrained_cfg`` (timm's values in [0, 1], times 255 as mmpretrain's preprocessors take
    pixels) and RGB channel order (mmcv loads BGR). A config that sets ``mean`` keeps its own.

    Args:
        config: The teacher's whole config (its ``model`` is a ``TimmClassifier``).
        field: Where the teacher sits in the distillation config, for the log line.
    """
    model_cfg = config.model
    if not is_timm_config(model_cfg):
        return
    given = configured_preprocessing(config)
    if given.get('mean') is not None:
        return
    from timm.models import get_pretrained_cfg
    name = model_cfg.get('model_name')
    pretrained = get_pretrained_cfg(name) if name else None
    if pretrained is None:
        raise ValueError(f'{field}.config: timm knows no model {name!r} (model.model_name), so '
                         'its preprocessing is unknown; give model.data_preprocessor=dict('
                         'mean=..., std=..., to_rgb=...) in the teacher config')
    mean = [round(value * 255, 4) for value in pretrained.mean]
    std = [round(value * 255, 4) for value in pretrained.std]
    set_hub_normalization(config, given, mean, std)
    print_log(f'{field}: timm model {name!r} takes RGB inputs normalized with mean {mean} and '
              f'std {std} (its pretrained_cfg)', logger='current')


def timm_input_size(model: nn.Module) -> Optional[Tuple[int, int]]:
    """The (H, W) a ``TimmClassifier``'s network takes, when timm marks it as fixed
    (``pretrained_cfg['fixed_input_size']``, ViT-like models): its patch embedding's ``img_size``
    (as built, which a config may have changed), else the pretrained input size; None for networks
    that take any size (CNNs) and for other models."""
    network = getattr(model, 'model', None)
    pretrained = getattr(network, 'pretrained_cfg', None)
    if not pretrained or not pretrained.get('fixed_input_size'):
        return None
    size = getattr(getattr(network, 'patch_embed', None), 'img_size', None)
    if size is None:
        size = pretrained['input_size'][1:]
    return cast(Tuple[int, int], tuple(int(side) for side in size))


def timm_num_classes(model: nn.Module) -> Optional[int]:
    """The class count of a ``TimmClassifier``'s network, or None for other models."""
    return getattr(getattr(model, 'model', None), 'num_classes', None)
