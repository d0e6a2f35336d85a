"""Turning a distillation config's training pipeline into one that replays a store's views."""

import inspect
import json
from typing import List, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS

from .store import VIEW_KEY, read_header

REPLAY_TYPE = 'mmkd_plugins.ReplayStoredView'


def _type_name(transform: dict) -> str:
    return str(transform['type']).split('.')[-1]


def training_dataset_with_pipeline(cfg: Config) -> Tuple[ConfigDict, str]:
    """The dataset config of the training set that holds its pipeline (inside Repeat- or
    ClassBalanced-style wrappers), and its place in the config.

    Raises:
        ValueError: the training set concatenates datasets (their sample indices repeat).
    """
    dataset, field = cfg.train_dataloader.dataset, 'train_dataloader.dataset'
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset, field = dataset.dataset, f'{field}.dataset'
    if 'datasets' in dataset or 'pipeline' not in dataset:
        raise ValueError(f'{field}: a soft-label store indexes the samples of one dataset; the '
                         'training set concatenates several (their sample indices repeat) or '
                         'has no pipeline')
    return dataset, f'{field}.pipeline'


def split_pipeline(pipeline: List[dict], field: str) -> Tuple[list, list, list]:
    """(loading, replayed, packing) parts of a training pipeline: the leading ``Load*`` transforms,
    the trailing ``Pack*`` ones, and every transform between them, which a store's views replay.

    Raises:
        ValueError: nothing between loading and packing.
    """
    pipeline = [dict(transform) for transform in pipeline]
    start = 0
    while start < len(pipeline) and _type_name(pipeline[start]).startswith('Load'):
        start += 1
    end = len(pipeline)
    while end > start and _type_name(pipeline[end - 1]).startswith('Pack'):
        end -= 1
    if start == end:
        raise ValueError(f'{field}: no transform between loading and packing, so there is no '
                         'view to store; without random transforms use TeacherCacheHook')
    return pipeline[:start], pipeline[start:end], pipeline[end:]


def as_plain(value):
    """A config value as plain JSON data (ConfigDicts, tuples -> dicts, lists)."""
    return json.loads(json.dumps(value.to_dict() if isinstance(value, ConfigDict) else value))


def _with_view_key(pack: dict, default_scope: str) -> dict:
    """A packing transform's config that also packs the replayed view's index."""
    name = str(pack['type'])
    cls = MMENGINE_TRANSFORMS.get(name if '.' in name else f'{default_scope}.{name}')
    default = inspect.signature(cls.__init__).parameters.get('meta_keys')
    meta_keys = pack.get('meta_keys', default.default if default is not None else ())
    return dict(pack, meta_keys=tuple(meta_keys) + (VIEW_KEY, ))


def use_soft_label_store(cfg: Config) -> None:
    """When ``model.soft_labels`` names a store: put :class:`ReplayStoredView` in place of the
    training pipeline's replayed transforms (those between loading and packing), with the packing
    transform also packing the view index. A pipeline that already replays a store is left as it is.

    Raises:
        ValueError: the pipeline's transforms are not those the store was made with (naming
            the first difference), or the training set concatenates datasets.
    """
    soft_labels = cfg.model.get('soft_labels')
    if soft_labels is None:
        return
    folder = soft_labels['store']
    header = read_header(folder, 'model.soft_labels.store')
    dataset, field = training_dataset_with_pipeline(cfg)
    if any(_type_name(transform) == REPLAY_TYPE.split('.')[-1] for transform in dataset.pipeline):
        return
    loading, replayed, packing = split_pipeline(dataset.pipeline, field)
    replayed, stored = as_plain(replayed), header['replayed_transforms']
    if replayed != stored:
        position = next((index for index, (ours, theirs) in enumerate(zip(replayed, stored))
                         if ours != theirs), min(len(replayed), len(stored)))
        ours = replayed[position] if position < len(replayed) else None
        theirs = stored[position] if position < len(stored) else None
        raise ValueError(
            f'{field}: the store {folder} was made with other transforms than this pipeline '
            f'replays: transform {position} is {ours} here and {theirs} in the store; make a '
            'store for this pipeline with tools/make_soft_labels.py')
    dataset.pipeline = loading + [
        dict(type=REPLAY_TYPE, store=folder, transforms=replayed,
             approximated=header['approximated'])
    ] + [_with_view_key(pack, cfg.get('default_scope', 'mmpretrain')) for pack in packing]


def undo_soft_label_store(cfg: Config) -> None:
    """The inverse of :func:`use_soft_label_store`, for the exported student's config: the replayed
    transforms back in place of ``ReplayStoredView``, the view index out of the packing transform's
    ``meta_keys``."""
    try:
        dataset, _ = training_dataset_with_pipeline(cfg)
    except (AttributeError, KeyError, ValueError):
        return
    pipeline: List[dict] = []
    for transform in dataset.pipeline:
        if _type_name(transform) == REPLAY_TYPE.split('.')[-1]:
            pipeline.extend(dict(replayed) for replayed in transform['transforms'])
        elif VIEW_KEY in transform.get('meta_keys', ()):
            pipeline.append(dict(transform, meta_keys=tuple(
                key for key in transform['meta_keys'] if key != VIEW_KEY)))
        else:
            pipeline.append(transform)
    dataset.pipeline = pipeline
