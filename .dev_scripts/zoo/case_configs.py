"""The configs of one sweep case: written as the README tells a user, then pointed at generated data
for two training iterations.

The user's config inherits the stock student config and the distillation runtime fragment and names
the stock teacher config with a checkpoint file; nothing else. The sweep then changes only what a
machine without the datasets, the network or a GPU needs: every training dataset becomes the
generated one (the stock pipelines, samplers, wrappers, batch augments and hooks stay), batches of
two, two iterations (``zoo.stop_after_iterations``, the stock schedule kept), no validation, no
Pretrained ``init_cfg``/``load_from`` (no network; the loading path itself is tested in
``tests/test_checkpoint``), and for detection every image scale in the pipelines, batch augments and
pipeline-switch hooks halved (rounded to multiples of 32), except for SSD, whose anchors are laid
out for its fixed input size; and without an accelerator, ``AmpOptimWrapper`` (the ``-amp`` configs)
becomes ``OptimWrapper`` (mmengine's AMP refuses a CPU; mixed precision is tested in
``tests/test_models/test_mixed_precision.py``).
"""

import copy
from typing import Any

import torch
from mmengine.config import Config, ConfigDict

from mmkd_plugins.models.teachers import load_model_config
from mmkd_plugins.testing import SHAPE_CLASSES

# Losses per task kind: softmax for classifiers and RoI heads, sigmoid for dense and DETR heads.
KD_AND_DIST = {
    'classifier': dict(loss_kd=dict(type='KDLoss', tau=1.0),
                       loss_dist=dict(type='DISTLoss', tau=1.0)),
    'one-stage': dict(loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid'),
                      loss_dist=dict(type='DISTLoss', tau=1.0, activation='sigmoid')),
    'two-stage': dict(loss_kd=dict(type='KDLoss', tau=1.0),
                      loss_dist=dict(type='DISTLoss', tau=1.0)),
}
KD_AND_DIST['detr'] = KD_AND_DIST['one-stage']
# What block-wise configs of a kind add to the model besides the losses: DETR hybrids take no
# task losses.
BLOCKWISE_OPTIONS = {'detr': dict(hybrids=dict(task_losses=False))}
DISTILLERS = {'kd_dist': 'mmkd_plugins.Distiller', 'blockwise': 'mmkd_plugins.BlockwiseDistiller'}


def user_config_text(student: str, teacher: str, teacher_checkpoint: str, kind: str,
                     method: str, runtime_fragment: str) -> str:
    """A distillation config exactly as the README tells a user to write one.

    Args:
        student: The stock student config, ``'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'``.
        teacher: The stock teacher config.
        teacher_checkpoint: The teacher's weights.
        kind: ``'classifier'``, ``'one-stage'``, ``'two-stage'`` or ``'detr'``.
        method: ``'kd_dist'`` (a Distiller with KD and DIST) or ``'blockwise'``.
        runtime_fragment: Path of ``configs/_base_/distillation_runtime.py``.
    """
    losses = KD_AND_DIST[kind] if method == 'kd_dist' else dict(
        loss_kd=KD_AND_DIST[kind]['loss_kd'])
    options = BLOCKWISE_OPTIONS.get(kind, {}) if method == 'blockwise' else {}
    return (f'_base_ = [{student!r}, {runtime_fragment!r}]\n'
            'model = dict(\n'
            '    _delete_=True,\n'
            f'    type={DISTILLERS[method]!r},\n'
            '    student={{_base_.model}},\n'
            f'    teacher=dict(config={teacher!r}, checkpoint={teacher_checkpoint!r}),\n'
            f'    distill_losses={losses!r},\n'
            + ''.join(f'    {key}={value!r},\n' for key, value in options.items())
            + ')\n'
            'default_hooks = {{_base_.distillation_hooks}}\n')


def without_pretrained(node: Any) -> Any:
    """``node`` with every ``init_cfg`` of type Pretrained (and ``pretrained=`` path) removed."""
    if isinstance(node, dict):
        cleaned = type(node)()
        for key, value in node.items():
            if key == 'pretrained' and isinstance(value, str):
                continue
            if key == 'init_cfg' and _loads_weights(value):
                cleaned[key] = None
                continue
            cleaned[key] = without_pretrained(value)
        return cleaned
    if isinstance(node, (list, tuple)):
        return type(node)(without_pretrained(value) for value in node)
    return node


def _loads_weights(init_cfg: Any) -> bool:
    entries = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(entry, dict) and entry.get('type') == 'Pretrained'
               for entry in entries)


SCALE_KEYS = ('scale', 'img_scale', 'crop_size', 'size', 'random_size_range', 'scales', 'border')


def halved(value: Any, key: str) -> Any:
    """An image scale halved: positive sizes to multiples of 32 (at least 32), borders exact."""
    if isinstance(value, (list, tuple)):
        return type(value)(halved(item, key) for item in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if key == 'border' or value <= 0:
        return int(value / 2)
    return max(32, int(round(value / 2 / 32)) * 32)


def halve_scales(node: Any) -> Any:
    """``node`` (a pipeline, dataloader, hook or preprocessor config) with image scales halved."""
    if isinstance(node, dict):
        return type(node)({key: halved(value, key) if key in SCALE_KEYS and _is_scale(value)
                           else halve_scales(value) for key, value in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(halve_scales(value) for value in node)
    return node


def _is_scale(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        _is_scale(item) for item in value)


def generated_dataset(dataset: dict, kind: str, data_root: str, grayscale: bool = False,
                      num_classes: int = len(SHAPE_CLASSES)) -> dict:
    """``dataset`` (any wrapper nesting) with its leaf datasets reading the generated data;
    pipelines and wrappers are kept.

    A pipeline for a dataset that hands over decoded arrays (MNIST, CIFAR: no loading transform)
    gets ``LoadImageFromFile`` first, in grayscale for a one-channel model; a detector of fewer
    classes than the shapes (a one-class pedestrian or face detector) reads only as many of them.
    """
    dataset = ConfigDict(dataset)
    if 'datasets' in dataset:  # ConcatDataset
        dataset.datasets = [generated_dataset(inner, kind, data_root, grayscale, num_classes)
                            for inner in dataset.datasets]
        return dataset
    if 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, MultiImageMixDataset
        dataset.dataset = generated_dataset(dataset.dataset, kind, data_root, grayscale,
                                            num_classes)
        return dataset
    pipeline = list(dataset.get('pipeline', []))
    if not pipeline or 'Load' not in str(pipeline[0].get('type', '')):
        pipeline.insert(0, dict(type='LoadImageFromFile',
                                color_type='grayscale' if grayscale else 'color'))
    if kind == 'classifier':
        return ConfigDict(type='CustomDataset', data_root=data_root, ann_file='train.txt',
                          pipeline=pipeline)
    return ConfigDict(type='CocoDataset', data_root=data_root,
                      ann_file='annotations/train.json', data_prefix=dict(img='train/'),
                      metainfo=dict(classes=SHAPE_CLASSES[:num_classes]),
                      filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=pipeline)


def detector_classes(model: dict) -> int:
    """The class count of a detector config's box head (a cascade's last stage); a large number for
    a classifier or an unknown head."""
    head = model.get('bbox_head') or (model.get('roi_head') or {}).get('bbox_head') or {}
    if isinstance(head, (list, tuple)):
        head = head[-1]
    return int(head.get('num_classes', 10 ** 6))


def uses_ssd_anchors(model: dict) -> bool:
    head = model.get('bbox_head') or {}
    return (head.get('anchor_generator') or {}).get('type') == 'SSDAnchorGenerator'


def sweep_config(user_config: str, kind: str, data_root: str, iterations: int = 2,
                 batch_size: int = 2) -> Config:
    """The user's config with the sweep's changes (see the module docstring).

    Args:
        user_config: Path of the config written by :func:`user_config_text`, or of one that
            only inherits the stock student config (the baseline check).
        kind: The task kind.
        data_root: The generated dataset's folder.
        iterations: Training iterations. Defaults to 2.
        batch_size: Images per batch. Defaults to 2.
    """
    cfg = Config.fromfile(user_config)
    distilled = 'student' in cfg.model  # else the stock config itself (the baseline check)
    student = without_pretrained(cfg.model.student if distilled else cfg.model)
    cfg.load_from = None
    loader = cfg.train_dataloader
    loader.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    loader.pop('prefetch_factor', None)
    preprocessor = student.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    grayscale = len(preprocessor.get('mean') or [0, 0, 0]) == 1
    loader.dataset = generated_dataset(loader.dataset, kind, data_root, grayscale,
                                       min(len(SHAPE_CLASSES), detector_classes(student)))
    if kind != 'classifier' and not uses_ssd_anchors(student):
        cfg.train_dataloader = halve_scales(cfg.train_dataloader)
        student = halve_scales(student)
        if cfg.get('custom_hooks'):
            cfg.custom_hooks = halve_scales(cfg.custom_hooks)
    imports = list((cfg.get('custom_imports') or {}).get('imports', []))
    cfg.custom_imports = dict(imports=imports + ['zoo.stop_after_iterations'],
                              allow_failed_imports=False)
    if distilled:
        cfg.model.student = student
    else:
        cfg.model = student
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type='ZooSweepStopHook', iterations=iterations)]
    for split in ('val', 'test'):
        cfg[f'{split}_cfg'] = cfg[f'{split}_dataloader'] = cfg[f'{split}_evaluator'] = None
    if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper' and not torch.cuda.is_available():
        # mmengine's AMP needs an accelerator; the --amp path is tested with bf16 autocast
        cfg.optim_wrapper.type = 'OptimWrapper'
        for key in ('loss_scale', 'dtype'):
            cfg.optim_wrapper.pop(key, None)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=batch_size)
    return cfg


def stock_student_config(student: str) -> Config:
    """The stock student config, as the exported student is loaded into it (no Pretrained)."""
    cfg = load_model_config(student, 'model.student')
    cfg.model = without_pretrained(copy.deepcopy(cfg.model))
    return cfg
