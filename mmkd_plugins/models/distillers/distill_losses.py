"""The bookkeeping of a distiller's losses: building ``distill_losses`` from the config, what each
loss compares, their weighted values under their log keys, and the learned temperatures for the
log."""

from typing import Callable, Dict, List, NamedTuple, Optional, Set, Tuple, Union, cast

import torch
from mmengine.registry import DefaultScope
from torch import nn

from mmkd_plugins.registry import MODELS, SCOPE
from ..module_output_recorder import check_module_names
from ..teachers import BOXES, LOGITS
from .teacher_entries import TeacherEntry

LossValue = Union[torch.Tensor, List[torch.Tensor]]
# The levels (FPN levels, decoder layers) of per-level outputs that a loss compares; None: all.
Levels = Optional[Tuple[int, ...]]


class ComparedOutputs(NamedTuple):
    """What one distillation loss compares: ``'logits'``, ``'boxes'`` (DETR-family students) or a
    module name, on each side."""

    student: str
    teacher: str


class TeacherLosses(NamedTuple):
    """One teacher's distillation losses: what each compares, their weight and log keys."""

    losses: nn.ModuleDict
    compared: Dict[str, ComparedOutputs]
    weight: float
    prefix: str  # of the loss keys: 'distill.' or 'distill.<teacher>.'
    log_suffix: str  # of the temperature keys: '' or '.<teacher>'
    levels: Dict[str, Levels]  # the loss entries' ``levels``

    @property
    def student_modules(self) -> Set[str]:
        """The student modules whose outputs the losses compare (logits left out)."""
        return {pair.student for pair in self.compared.values()} - {LOGITS, BOXES}


def build_teacher_losses(entry: TeacherEntry, adapter, student: nn.Module) -> TeacherLosses:
    """``entry``'s distillation losses, built and checked against the student (losses that need
    labels, the student modules they name).

    Raises:
        ValueError: naming the field of the loss at fault.
    """
    losses, compared, levels = build_distill_losses(entry.losses, entry.losses_field)
    check_label_losses(losses, compared, adapter, student, entry.losses_field)
    check_box_losses(compared, adapter, entry.losses_field)
    terms = TeacherLosses(losses, compared, entry.weight, entry.prefix, entry.log_suffix, levels)
    check_module_names(student, terms.student_modules, f'{entry.losses_field}.student_output')
    return terms


def build_distill_loss(field: str, cfg: dict) -> nn.Module:
    """Build one entry of ``distill_losses``, looking its type up in mmkd_plugins first.

    Host packages' losses stay reachable with their scope prefix (``'mmpretrain.XXX'``).

    Args:
        field: The entry's place in the config, for errors (``'model.distill_losses.loss_kd'``).
        cfg: The loss config.
    """
    try:
        with DefaultScope.overwrite_default_scope(SCOPE):
            return MODELS.build(cfg)
    except KeyError as error:
        raise KeyError(f'{field}: unknown loss type {cfg.get("type")!r} ({error})') from error


def build_distill_losses(
        configs: Dict[str, dict],
        field: str) -> Tuple[nn.ModuleDict, Dict[str, ComparedOutputs], Dict[str, Levels]]:
    """The loss modules of ``distill_losses`` (at ``field`` in the config), what each one compares
    (``student_output`` / ``teacher_output`` keys of an entry, default logits) and its ``levels``
    (which levels of per-level outputs: indices, e.g. ``[-1]`` for a DETR's last decoder layer;
    default all).

    Raises:
        ValueError: no loss, a name without ``'loss'`` (the runner sums and logs only those), or
            ``levels`` that is not a non-empty list of level indices.
    """
    losses, compared, levels = nn.ModuleDict(), {}, {}
    for name, cfg in configs.items():
        if 'loss' not in name:
            raise ValueError(f"{field}: the name {name!r} must contain 'loss' "
                             "(e.g. 'loss_kd') so that the runner sums and logs it")
        cfg = dict(cfg)
        compared[name] = ComparedOutputs(student=cfg.pop('student_output', LOGITS),
                                         teacher=cfg.pop('teacher_output', LOGITS))
        levels[name] = checked_levels(cfg.pop('levels', None), f'{field}.{name}.levels')
        losses[name] = build_distill_loss(f'{field}.{name}', cfg)
    if not losses:
        raise ValueError(f'{field}: at least one distillation loss is needed')
    return losses, compared, levels


def checked_levels(levels, field: str) -> Levels:
    """``levels`` of a loss entry as a tuple of indices (None: all levels).

    Raises:
        ValueError: naming ``field``, for anything but None or a non-empty list of integers.
    """
    if levels is None:
        return None
    if (not isinstance(levels, (list, tuple)) or not levels
            or not all(isinstance(level, int) and not isinstance(level, bool)
                       for level in levels)):
        raise ValueError(f'{field}: expected a non-empty list of level indices (e.g. [-1], the '
                         f'last FPN level or decoder layer), got {levels!r}')
    return tuple(levels)


def chosen_levels(outputs: Union[torch.Tensor, list], levels: Levels, name: str) -> LossValue:
    """The ``levels`` of per-level ``outputs`` (all with None).

    Raises:
        ValueError: levels chosen for one tensor, or an index out of range, naming the loss.
    """
    if levels is None:
        return outputs
    if not isinstance(outputs, (list, tuple)):
        raise ValueError(f'distill_losses.{name}.levels: the compared outputs are one tensor, '
                         'not per-level outputs (FPN levels, decoder layers)')
    try:
        return [outputs[level] for level in levels]
    except IndexError:
        raise ValueError(f'distill_losses.{name}.levels: {list(levels)} is out of range for '
                         f'{len(outputs)} levels') from None


def check_box_losses(compared: Dict[str, ComparedOutputs], adapter, field: str) -> None:
    """Losses that compare ``'boxes'`` (the distillation boxes' predictions of DETR-family students)
    do so on both sides, for an adapter that gives them.

    Raises:
        ValueError: naming ``<field>.<loss name>``.
    """
    for name, pair in compared.items():
        if BOXES not in pair:
            continue
        if not adapter.compares_boxes:
            raise ValueError(f"{field}.{name}: compares 'boxes', which only DETR-family "
                             f'students give (this student is a {adapter.task})')
        if pair != (BOXES, BOXES):
            raise ValueError(f"{field}.{name}: compares 'boxes' with {pair!r}; set "
                             "student_output='boxes' and teacher_output='boxes'")


def check_label_losses(losses: nn.ModuleDict, compared: Dict[str, ComparedOutputs],
                       adapter, student: nn.Module, field: str) -> None:
    """Losses that need labels (DKD): classifiers with one class per sample, on logits.

    Raises:
        ValueError: naming ``<field>.<loss name>``.
    """
    for name, loss_module in losses.items():
        if not getattr(loss_module, 'requires_labels', False):
            continue
        loss_field, loss_type = f'{field}.{name}', type(loss_module).__name__
        if not adapter.image_classification:
            raise ValueError(f'{loss_field}: {loss_type} needs class labels per sample; it is '
                             f'for classifiers, not {adapter.task}')
        if getattr(student.data_preprocessor, 'batch_augments', None) is not None:
            raise ValueError(f'{loss_field}: {loss_type} needs one class per sample, but the '
                             'batch augments (Mixup/CutMix) mix labels')
        if compared[name] != (LOGITS, LOGITS):
            raise ValueError(f'{loss_field}: {loss_type} compares logits')


def distill_terms(losses: nn.ModuleDict, compared: Dict[str, ComparedOutputs],
                  student_outputs: dict, teacher_outputs: dict, data_samples: list,
                  prefix: str, weight: float = 1.0,
                  levels: Optional[Dict[str, Levels]] = None) -> Dict[str, LossValue]:
    """``weight`` times each distillation loss between the outputs it compares (of per-level
    outputs, the ``levels`` chosen for it), keyed ``<prefix><loss name>``."""
    terms = {}
    for name, loss_module in losses.items():
        chosen = (levels or {}).get(name)
        terms[f'{prefix}{name}'] = scale_loss(sum_over_levels(
            loss_module,
            chosen_levels(student_outputs[compared[name].student], chosen, name),
            chosen_levels(teacher_outputs[compared[name].teacher], chosen, name),
            **label_kwargs(loss_module, data_samples)), weight)
    return terms


def label_kwargs(loss_module: nn.Module, data_samples: list) -> dict:
    """``dict(labels=(B,) ground-truth classes)`` for a loss that ``requires_labels`` (DKD), else
    nothing."""
    if not getattr(loss_module, 'requires_labels', False):
        return {}
    return dict(labels=torch.cat([sample.gt_label for sample in data_samples]))


def temperature_logs(losses: nn.ModuleDict, suffix: str = '') -> Dict[str, torch.Tensor]:
    """``tau<name>`` and ``lambda<name>`` (the loss name less ``'loss'``, then ``suffix``) of each
    loss with a learnable temperature (CTKD), for the log (their keys hold no 'loss', so the runner
    does not sum them)."""
    logs = {}
    for name, loss_module in losses.items():
        temperature = getattr(loss_module, 'temperature', None)
        if temperature is not None:
            key = name.replace('loss', '') + suffix
            logs[f'tau{key}'] = temperature.last_tau
            logs[f'lambda{key}'] = torch.tensor(temperature.last_lambda)
    return logs


def weighted_task_losses(task_losses: dict, prefix: str,
                         weight: float) -> Dict[str, LossValue]:
    """A model's own losses times ``weight`` (other logged values unscaled), keys prefixed."""
    return {f'{prefix}{key}': scale_loss(value, weight if 'loss' in key else 1.0)
            for key, value in task_losses.items()}


def sum_over_levels(loss_module: Callable[..., torch.Tensor],
                    student_output: Union[torch.Tensor, list],
                    teacher_output: Union[torch.Tensor, list], **kwargs) -> torch.Tensor:
    """The loss of one tensor pair, or the sum over the levels of per-level outputs (FPN);
    ``kwargs`` go to every call of ``loss_module``."""
    if not isinstance(student_output, (list, tuple)):
        return loss_module(student_output, teacher_output, **kwargs)
    if len(student_output) != len(teacher_output):
        raise ValueError(f'the student has {len(student_output)} output levels and the teacher '
                         f'{len(teacher_output)}')
    return cast(torch.Tensor,
                sum(loss_module(s, t, **kwargs) for s, t in zip(student_output, teacher_output)))


def scale_loss(value: LossValue, scale: float) -> LossValue:
    """A loss (or per-level list of losses) times ``scale``."""
    if scale == 1.0:
        return value
    if isinstance(value, (list, tuple)):
        return [item * scale for item in value]
    return value * scale
