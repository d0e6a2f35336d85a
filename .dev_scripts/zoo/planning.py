"""Which stock configs of a model-zoo family the sweep distills: a student and a teacher.

A family is one folder of an installed package's config tree (``mmpretrain/.mim/configs/<family>``,
``mmdet/.mim/configs/<family>``, with its subfolders such as mmpretrain's ``benchmarks/`` of
fine-tuning configs). Every config of it is loaded and its model built (on the meta device
where it can be, else on the CPU; no ``init_weights``) to learn its kind and size. The sweep
distills:

* classification: models that are (subclasses of) mmpretrain's ``ImageClassifier``, grouped by
  class count (1000 preferred, else the biggest group);
* detection: mmdet's ``SingleStageDetector`` and ``TwoStageDetector`` subclasses, grouped by
  detector class, head class and class count (the biggest group), except mmdet's own
  distillation detectors (their teacher is part of the model).

Within the group the student is the smallest model and the teacher the biggest one of the
student's input geometry (:func:`input_geometry`: backbones that fix an input size or a patch
size are paired with one of the same sizes, since block-wise distillation pairs stage states
of one shape) whose parameter count is at most ``max_teacher_params`` (the same config where
the group has no other). Any other model kind (self-supervised, multimodal, retrieval,
DETR-like, panoptic, instance segmentation without boxes heads, tracking) is reported as not
attempted, with its type.
"""

import copy
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

ZOO_PACKAGES = ('mmpretrain', 'mmdet')


def config_tree(zoo: str) -> str:
    """The folder of ``zoo``'s installed configs, e.g. ``.../mmpretrain/.mim/configs``."""
    package = __import__(zoo)
    return osp.join(osp.dirname(package.__file__), '.mim', 'configs')


def families(zoo: str) -> List[str]:
    """The family folders of ``zoo``'s config tree (``_base_`` is not a family)."""
    root = config_tree(zoo)
    return sorted(name for name in os.listdir(root)
                  if name != '_base_' and glob.glob(osp.join(root, name, '*.py')))


def zoo_models(zoo: str):
    """``zoo``'s model registry, with every model of the package registered."""
    if zoo == 'mmpretrain':
        import mmpretrain.models  # noqa: F401
        from mmpretrain.registry import MODELS as registry
    else:
        import mmdet.models  # noqa: F401
        from mmdet.registry import MODELS as registry
    return registry


def model_kind(zoo: str, model_type: str, default_scope: str) -> Optional[str]:
    """``'classifier'``, ``'one-stage'``, ``'two-stage'``, ``'detr'`` or None (not attempted;
    Grounding DINO too: it needs text prompts and a language model)."""
    registry = zoo_models(zoo)
    with DefaultScope.overwrite_default_scope(default_scope):
        model_class = registry.get(model_type)
    if model_class is None:
        return None
    if zoo == 'mmpretrain':
        from mmpretrain.models import ImageClassifier
        return 'classifier' if issubclass(model_class, ImageClassifier) else None
    from mmdet.models.detectors import (DetectionTransformer, GroundingDINO,
                                        KnowledgeDistillationSingleStageDetector,
                                        SingleStageDetector, TwoStageDetector)
    if issubclass(model_class, (KnowledgeDistillationSingleStageDetector, GroundingDINO)):
        return None
    if issubclass(model_class, DetectionTransformer):
        return 'detr'
    if issubclass(model_class, TwoStageDetector):
        return 'two-stage'
    if issubclass(model_class, SingleStageDetector):
        return 'one-stage'
    return None


def _build_for_counting(model_cfg: dict, scope: str) -> torch.nn.Module:
    """The model, on the meta device where it builds there (no memory, no time: EVA-G has 1 B
    parameters), else on the CPU."""
    with DefaultScope.overwrite_default_scope(scope):
        try:
            with torch.device('meta'):
                return MODELS.build(copy.deepcopy(model_cfg))
        except Exception:  # e.g. .item() on a drop-path schedule
            return MODELS.build(model_cfg)


def input_geometry(model_cfg: dict) -> Tuple[Optional[tuple], Optional[tuple]]:
    """The input size and patch size a config's backbone is built for, each as (H, W), None where
    the config leaves it to the backbone (CNNs take any size)."""
    backbone = model_cfg.get('backbone') or {}

    def pair(value) -> Optional[tuple]:
        if value is None:
            return None
        return tuple(value) if isinstance(value, (tuple, list)) else (value, value)

    return pair(backbone.get('img_size')), pair(backbone.get('patch_size'))


def choose_pair(group: List[dict], max_teacher_params: float) -> Tuple[dict, dict]:
    """The student (the smallest model of ``group``) and the teacher (the biggest of the student's
    ``geometry`` with at most ``max_teacher_params`` parameters, else the student).

    Args:
        group: Described configs (:func:`describe_config`), each with ``params``, ``config``
            and ``geometry``.
        max_teacher_params: The biggest teacher, in parameters.
    """
    ordered = sorted(group, key=lambda d: (d['params'], len(d['config']), d['config']))
    student = ordered[0]
    fitting = [d for d in ordered if d['params'] <= max_teacher_params
               and d['geometry'] == student['geometry']] or [student]
    return student, max(fitting, key=lambda d: (d['params'], -len(d['config'])))


def _head_signature(model: torch.nn.Module, kind: str) -> str:
    """The head class and class count: student and teacher must agree on them."""
    if kind == 'classifier':
        head = model.head
        return f"{type(head).__name__}/{getattr(head, 'num_classes', '?')}"
    if kind == 'one-stage':
        head = model.bbox_head
        return f"{type(head).__name__}/{getattr(head, 'num_classes', '?')}"
    if kind == 'detr':  # the detector class and whether its decoder starts from proposals
        return (f"{type(model).__name__}/two-stage={getattr(model, 'as_two_stage', False)}/"
                f"{getattr(model.bbox_head, 'num_classes', '?')}")
    box_head = model.roi_head.bbox_head
    if isinstance(box_head, torch.nn.ModuleList):  # cascade stages
        box_head = box_head[-1]
    return (f'{type(model.roi_head).__name__}/{type(box_head).__name__}/'
            f"{getattr(box_head, 'num_classes', '?')}")


def describe_config(zoo: str, family: str, path: str, described: Dict[str, dict]) -> dict:
    """Kind, head signature and parameter count of one stock config (``error`` if it does not load
    or build).

    A model already described (in ``described``, by its model config) is not built again.
    """
    name = f'{zoo}::{family}/' + osp.relpath(path, osp.join(config_tree(zoo), family))
    try:
        cfg = Config.fromfile(path)
        model_cfg = cfg.model.copy()
        if cfg.get('data_preprocessor') is not None:
            model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
        scope = cfg.get('default_scope', zoo)
        kind = model_kind(zoo, model_cfg.type, scope)
        if kind is None:
            return dict(config=name, model_type=str(model_cfg.type), kind=None)
        model_key = json.dumps(cfg.model.to_dict(), sort_keys=True, default=str)
        if model_key in described:
            return dict(described[model_key], config=name)
        model = _build_for_counting(model_cfg, scope)
        if kind == 'classifier' and getattr(model, 'head', None) is None:
            return dict(config=name, model_type=f'{model_cfg.type} without a head', kind=None)
        described[model_key] = dict(
            config=name, model_type=str(model_cfg.type), kind=kind,
            head=_head_signature(model, kind), model_key=model_key,
            geometry=input_geometry(model_cfg),
            params=sum(parameter.numel() for parameter in model.parameters()))
        return described[model_key]
    except Exception as error:  # a stock config that does not load or build on this stack
        return dict(config=name, error=f'{type(error).__name__}: {error}'[:300])


def _preferred_group(candidates: List[dict]) -> List[dict]:
    groups: Dict[tuple, List[dict]] = {}
    for described in candidates:
        groups.setdefault((described['kind'], described['head']), []).append(described)

    def preference(key: tuple) -> tuple:
        members = groups[key]
        in1k = key[0] == 'classifier' and key[1].endswith('/1000')
        return (not in1k, -len(members), key)

    return groups[min(groups, key=preference)]


def plan_family(zoo: str, family: str, max_teacher_params: float) -> dict:
    """The family's sweep case: ``student``, ``teacher``, ``kind``, or ``not_attempted``.

    Returns:
        ``dict(zoo, family, kind, student, teacher, student_params, teacher_params,
        configs)`` for a case, or ``dict(zoo, family, not_attempted=reason, configs)``.
    """
    paths = sorted(glob.glob(osp.join(config_tree(zoo), family, '**', '*.py'), recursive=True))
    models: Dict[str, dict] = {}
    described = [describe_config(zoo, family, path, models) for path in paths]
    candidates = [d for d in described if d.get('kind')]
    plan = dict(zoo=zoo, family=family, configs=len(paths))
    if not candidates:
        types = sorted({d['model_type'] for d in described if 'model_type' in d})
        errors = [d['error'] for d in described if 'error' in d]
        reason = (f"model types {', '.join(types)}: not a distillable "
                  f"{'ImageClassifier' if zoo == 'mmpretrain' else 'detector'}"
                  if types else f'no stock config builds ({errors[0] if errors else "none"})')
        return dict(plan, not_attempted=reason)
    unique = {}
    for candidate in sorted(candidates, key=lambda d: (len(d['config']), d['config'])):
        unique.setdefault(candidate['model_key'], candidate)  # one config per architecture
    student, teacher = choose_pair(_preferred_group(list(unique.values())), max_teacher_params)
    return dict(plan, kind=student['kind'], student=student['config'],
                teacher=teacher['config'], student_params=student['params'],
                teacher_params=teacher['params'])
