"""Teachers from HuggingFace ``transformers``, through mmpretrain's ``HuggingFaceClassifier``:

their own preprocessing, input size and class count, read from the model's image-processor and model
configs (a hub name in the local HuggingFace cache, or a folder of ``save_pretrained``).
"""

from typing import Optional, Tuple, cast

from mmengine.config import Config
from mmengine.logging import print_log
from torch import nn

from .hub_preprocessing import configured_preprocessing, set_hub_normalization

HUGGINGFACE_CLASSIFIERS = ('HuggingFaceClassifier', 'mmpretrain.HuggingFaceClassifier')


def is_huggingface_config(model_cfg: dict) -> bool:
    """Whether a model config builds mmpretrain's ``HuggingFaceClassifier``."""
    return model_cfg.get('type') in HUGGINGFACE_CLASSIFIERS


def pixel_normalization(processor) -> Tuple[list, list]:
    """(mean, std) on mmpretrain's 0-255 pixels equal to an image processor's rescaling
    (``x · rescale_factor``) followed by its normalization (``(x - mean) / std``)."""
    scale = 1 / processor.rescale_factor if getattr(processor, 'do_rescale', True) else 1.0
    if getattr(processor, 'do_normalize', True):
        mean, std = list(processor.image_mean), list(processor.image_std)
    else:
        mean, std = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    return ([round(value * scale, 4) for value in mean],
            [round(value * scale, 4) for value in std])


def fill_huggingface_preprocessing(config: Config, field: str) -> None:
    """Give a ``HuggingFaceClassifier`` teacher whose config does not normalize its inputs the
    normalization of the model's image processor (``preprocessor_config.json``), in place: its
    rescaling and mean/std as mean/std of 0-255 pixels, RGB channel order (mmcv loads BGR). A config
    that sets ``mean`` keeps its own.

    Raises:
        ValueError: the model's image processor cannot be read (not in the local HuggingFace
            cache nor a folder), naming the field and what to give instead.
    """
    model_cfg = config.model
    if not is_huggingface_config(model_cfg):
        return
    given = configured_preprocessing(config)
    if given.get('mean') is not None:
        return
    from transformers import AutoImageProcessor
    name = model_cfg.get('model_name')
    try:
        processor = AutoImageProcessor.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise ValueError(
            f'{field}.config: the image processor of HuggingFace model {name!r} '
            f'(model.model_name) cannot be read ({error}); put the model in the HuggingFace '
            'cache or a folder, or give model.data_preprocessor=dict(mean=..., std=..., '
            'to_rgb=...) in the teacher config') from error
    mean, std = pixel_normalization(processor)
    set_hub_normalization(config, given, mean, std)
    print_log(f'{field}: HuggingFace model {name!r} takes RGB inputs normalized with mean '
              f'{mean} and std {std} (its image processor)', logger='current')


def huggingface_input_size(model: nn.Module) -> Optional[Tuple[int, int]]:
    """The (H, W) a ``HuggingFaceClassifier``'s network was built for, from its config's
    ``image_size`` (ViT, DeiT, BEiT, Swin, ConvNeXt configs have one); None for networks without one
    (ResNet) and for other models."""
    size = getattr(getattr(getattr(model, 'model', None), 'config', None), 'image_size', None)
    if size is None or not type(model).__name__ == 'HuggingFaceClassifier':
        return None
    if isinstance(size, int):
        return (size, size)
    return cast(Tuple[int, int], tuple(int(side) for side in size))


def huggingface_num_classes(model: nn.Module) -> Optional[int]:
    """The class count of a ``HuggingFaceClassifier``'s network, or None for other models."""
    if type(model).__name__ != 'HuggingFaceClassifier':
        return None
    return getattr(cast(nn.Module, model.model).config, 'num_labels', None)
