"""Turn "a stock config (or local path) + a checkpoint URL or path" into a frozen teacher."""

import copy
import os.path as osp
import re
from typing import Dict, Optional, Set, Union

import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.model import BaseModel
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope
from torch import nn

from mmkd_plugins.checkpoint import load_checkpoint_weights_only
from mmkd_plugins.checkpoint.model_zoo_download import (CheckpointDownloadError,
                                                        CheckpointHashError, cache_path_of)
from .huggingface_teachers import fill_huggingface_preprocessing
from .timm_teachers import fill_timm_preprocessing

ConfigSource = Union[str, dict, Config]


def load_model_config(config: ConfigSource, field: str,
                      cfg_options: Optional[dict] = None) -> Config:
    """Load a whole config from ``'pkg::path.py'``, a local file, or an already loaded config.

    Args:
        config: ``'mmpretrain::resnet/resnet34_8xb32_in1k.py'``, a local ``.py`` path, or a
            dict/Config.
        field: The config field that named it, used in error messages.
        cfg_options: Overrides merged into the loaded config (as ``--cfg-options``).

    Returns:
        The config; one from a package (``'pkg::...'``) that sets no ``default_scope`` (such as
        mmpretrain's model-only DINOv2 configs) gets the package's, so its types resolve.
    """
    if isinstance(config, str):
        if '::' in config:
            try:
                loaded = get_config(config)
            except Exception as error:
                raise FileNotFoundError(
                    f'{field}: cannot load the config {config!r} ({error})') from error
            if loaded.get('default_scope') is None:  # e.g. mmpretrain's model-only configs
                loaded.default_scope = config.split('::', 1)[0]
        elif osp.isfile(config):
            loaded = Config.fromfile(config)
        else:
            raise FileNotFoundError(
                f"{field}: config file not found: {config!r} (expected 'package::path.py' or "
                'a local config file)')
    else:
        loaded = Config(dict(config))
    if cfg_options:
        loaded.merge_from_dict(cfg_options)
    if 'model' not in loaded:
        raise ValueError(f'{field}: the config {config!r} has no `model` field')
    return loaded


def build_model_from_config(config: Config) -> BaseModel:
    """Build ``config.model`` in the config's own default scope, as mmengine's Runner does.

    A top-level ``data_preprocessor`` (mmpretrain's style) is used when the model has none.
    ``config`` is left as it is (DETR-family detectors complete their sub-configs in place).
    """
    model_cfg = copy.deepcopy(config.model)
    if config.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', config.data_preprocessor)
    with DefaultScope.overwrite_default_scope(config.get('default_scope')):
        return MMENGINE_MODELS.build(model_cfg)


def _describe_key_mismatch(missing: list, unexpected: list, wrong_shapes: list) -> str:
    lines = []
    for title, keys in (('missing in the checkpoint', missing),
                        ('unexpected in the checkpoint', unexpected),
                        ('with another shape', wrong_shapes)):
        if keys:
            shown = ', '.join(keys[:8]) + (f', ... ({len(keys)} in all)' if len(keys) > 8 else '')
            lines.append(f'  {len(keys)} keys {title}: {shown}')
    return '\n'.join(lines)


# torch's message for each mismatched shape, collected during ``load_state_dict``.
SIZE_MISMATCH = re.compile(r'size mismatch for (\S+): copying a param with shape (.+) from '
                           r'checkpoint, the shape in current model is (.+)\.')


def _as_tuple(shape: str) -> str:
    """``'torch.Size([1, 2])'`` -> ``'(1, 2)'``, as a shape reads elsewhere in our messages."""
    dims = re.fullmatch(r'torch\.Size\(\[(.*)\]\)', shape)
    if dims is None:
        return shape
    values = tuple(int(dim) for dim in dims.group(1).split(',') if dim.strip())
    return str(values)


def keys_dropped_on_load(model: nn.Module) -> Set[str]:
    """The keys that ``model``'s load hooks remove from any state dict, found by loading its own
    state dict into it (which changes no value): they are missing even then."""
    own = model.load_state_dict(model.state_dict(), strict=False)
    return set(own.missing_keys)


def load_state_dict_strictly(model: nn.Module, state_dict: Dict[str, torch.Tensor],
                             field: str, source: str) -> None:
    """Load ``state_dict`` into ``model``, failing with every mismatched key named.

    Keys and shapes are judged after the model's own load hooks ran (``_load_from_state_dict``
    overrides and load-state-dict pre-hooks, e.g. mmpretrain's ViTs resizing ``pos_embed`` from
    a checkpoint trained at another image size, or renaming old keys), as the stock tools load
    them. Only ``num_batches_tracked`` of BatchNorm may be absent (old checkpoints lack it), and
    the keys that the model's own hooks drop from every state dict it loads, its own included
    (Swin-V2 deletes its ``relative_position_index``/``relative_coords_table`` buffers and
    recomputes them from the window size): see :func:`keys_dropped_on_load`.

    Raises:
        ValueError: keys are missing or unexpected, or shapes differ.
    """
    state_dict = {key[len('module.'):] if key.startswith('module.') else key: value
                  for key, value in state_dict.items()}
    dropped = keys_dropped_on_load(model)
    wrong_shapes = []
    try:
        result = model.load_state_dict(state_dict, strict=False)
        missing, unexpected = result.missing_keys, result.unexpected_keys
    except RuntimeError as error:  # torch reports shape mismatches even when not strict
        wrong_shapes = [f'{key} {_as_tuple(checkpoint_shape)} vs model {_as_tuple(model_shape)}'
                        for key, checkpoint_shape, model_shape in
                        SIZE_MISMATCH.findall(str(error))]
        if not wrong_shapes:
            raise
        missing = unexpected = []
    missing = [key for key in missing
               if not key.endswith('num_batches_tracked') and key not in dropped]
    if missing or unexpected or wrong_shapes:
        raise ValueError(
            f'{field}: the checkpoint {source} does not match the model built from the config '
            f'(is it a checkpoint of another architecture?)\n'
            + _describe_key_mismatch(missing, unexpected, wrong_shapes))


def load_checkpoint_file(checkpoint: str, field: str) -> dict:
    """Read a checkpoint (local path, URL or any scheme mmengine knows, such as ``torchvision://``)
    with weights-only unpickling; a local ``.safetensors`` file (timm's and the HuggingFace hub's
    format, tensors only by design) with safetensors.

    Raises:
        FileNotFoundError: a local file that does not exist, or a URL that could not be
            downloaded (the message says where to put the file for offline use). Other errors
            (an unsafe or corrupt file, a hash mismatch) keep their own type and message.
    """
    is_local = '://' not in checkpoint
    if is_local and not osp.isfile(osp.expanduser(checkpoint)):
        raise FileNotFoundError(f'{field}: checkpoint file not found: {checkpoint!r}')
    if is_local and checkpoint.endswith('.safetensors'):  # timm's and the HF hub's format
        from safetensors.torch import load_file
        return load_file(osp.expanduser(checkpoint), device='cpu')
    try:
        return load_checkpoint_weights_only(checkpoint, map_location='cpu')
    except CheckpointHashError:
        raise
    except CheckpointDownloadError as error:
        hint = ''
        if checkpoint.startswith(('http://', 'https://')):
            hint = f'; to use it offline, put the file at {cache_path_of(checkpoint)}'
        raise FileNotFoundError(f'{field}: {error}{hint}') from error


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode, no gradients, and marked initialised so the runner's ``init_weights()`` leaves the
    loaded weights alone."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for module in model.modules():
        if hasattr(module, 'is_init'):
            module.is_init = True  # type: ignore[assignment]  # torch stub: Tensor/Module only
    return model


def build_teacher(config: ConfigSource, cfg_options: Optional[dict] = None,
                  field: str = 'teacher') -> BaseModel:
    """Build the teacher model from its config, without weights yet.

    Args:
        config: The teacher's config (see :func:`load_model_config`).
        cfg_options: Overrides for the teacher's config.
        field: The config field describing this teacher, for error messages.
    """
    teacher_config = load_model_config(config, f'{field}.config', cfg_options)
    fill_timm_preprocessing(teacher_config, field)
    fill_huggingface_preprocessing(teacher_config, field)
    try:
        return build_model_from_config(teacher_config)
    except KeyError as error:
        raise KeyError(f'{field}.config: cannot build the teacher model: {error}') from error


def load_teacher_weights(teacher: BaseModel, checkpoint: Optional[str],
                         field: str = 'teacher') -> BaseModel:
    """Load the teacher's checkpoint strictly and freeze it.

    Args:
        teacher: The model built by :func:`build_teacher`.
        checkpoint: Local path or http(s) URL of the teacher's weights.
        field: The config field describing this teacher, for error messages.

    Returns:
        The teacher, frozen and in eval mode.
    """
    if not checkpoint:
        raise ValueError(f'{field}.checkpoint: a teacher needs trained weights (a local path '
                         'or a model-zoo URL), got none')
    loaded = load_checkpoint_file(checkpoint, f'{field}.checkpoint')
    state_dict = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else loaded
    load_state_dict_strictly(teacher, state_dict, f'{field}.checkpoint', repr(checkpoint))
    return freeze(teacher)
