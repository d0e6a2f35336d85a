"""Block-wise logit distillation: hybrid student/teacher networks distilled through their logits (Yu
et al., arXiv 2411.01547; methods.md §3)."""

import inspect
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Union, cast

import torch
from mmengine.model import BaseModel
from torch import nn
from torch.utils.checkpoint import checkpoint

from mmkd_plugins.registry import MODELS
from ..blockwise import HybridNetworks
from ..module_output_recorder import ModuleOutputRecorder
from ..task_adapters import HybridTaskAdapter, last_layers
from ..teachers import LOGITS
from .distill_losses import LossValue, sum_over_levels, temperature_logs, weighted_task_losses
from .distiller import Distiller
from .teacher_entries import SINGLE

Logits = Union[torch.Tensor, List[torch.Tensor]]


def mean_logits(logits: Sequence[Logits]) -> Logits:
    """The element-wise mean of several models' logits (per level for per-level lists)."""
    if isinstance(logits[0], (list, tuple)):
        return [torch.stack(level).mean(dim=0) for level in zip(*logits)]
    return torch.stack(list(cast(Sequence[torch.Tensor], logits))).mean(dim=0)


def paired_levels(hybrid_logits: Logits, teacher_logits: Logits) -> Logits:
    """A hybrid's logits at the levels of the teacher's compared logits.

    A hybrid ends in the teacher's head, so its per-level logits are the teacher's levels; where a
    DETR student's decoder is shallower than the teacher's, the compared teacher logits are its last
    layers only (the adapter's ``paired_outputs``), and so are the hybrid's. Unchanged otherwise.
    """
    if not isinstance(hybrid_logits, (list, tuple)):
        return hybrid_logits
    return last_layers(list(hybrid_logits), len(teacher_logits))


def detach_logits(logits: Logits) -> Logits:
    """``logits`` cut from the autograd graph (per level for per-level lists)."""
    if isinstance(logits, (list, tuple)):
        return [level.detach() for level in logits]
    return logits.detach()


@MODELS.register_module()
class BlockwiseDistiller(Distiller):
    """Block-wise logit distillation with learned stage connectors.

    On top of the :class:`Distiller` (whose student forward, teacher forward and checkpoint
    behaviour it keeps), it builds hybrids N_i = teacher stages i+1..n, neck and head ∘ C_i ∘
    student stages 1..i (see :class:`~mmkd_plugins.models.blockwise.HybridNetworks`) and
    minimizes ``α·L_task + β·L_distill + γ·L_cross`` with, for each loss d of
    ``distill_losses`` (KD, DIST, ...)::

        L_task    = L_task(Y^S) + Σ_i w_i·L_task(Y^{N_i})      # the hybrid's: teacher head loss
        L_distill = d(Y^S, Y^T) + Σ_i w_i·d(Y^{N_i}, Y^T)
        Y^ens     = mean_i Y^{N_i}                             # detached by default
        L_cross   = d(Y^S, Y^ens) + Σ_i w_i·d(Y^{N_i}, Y^ens)

    With ``hybrids=dict(per_step=k)``, each step runs k of the hybrids in turn, weighted
    ``w_i·n/k`` (the sums then have the full form's value on average over n steps), and Y^ens
    is the mean of that step's hybrids.

    Every term is logged under its own key: ``student.*``, ``distill.<name>``,
    ``cross.<name>`` for the student, and ``hybrid<i>.<task loss>``, ``hybrid<i>.distill.<name>``,
    ``hybrid<i>.cross.<name>`` for hybrid N_i. The connectors are trained with the student and
    saved in checkpoints (``hybrids.connectors.*``); the exported student holds neither them
    nor the teacher. The paper gives no values for α, β, γ: all default to 1.

    Args:
        student: The student model's config (the stock config's ``model``).
        teacher: ``dict(config=..., checkpoint=..., cfg_options=None)``, as for
            :class:`Distiller`.
        distill_losses: Name -> loss config; each loss d compares logits (no
            ``student_output`` / ``teacher_output``).
        hybrids: ``dict(stages=None, stage_pairs=None, connector=dict(type='ConvBNConnector'),
            weights='uniform', probe_size=None, per_step=None,
            recompute_teacher_tails=False, task_losses=True)``, see
            :class:`~mmkd_plugins.models.blockwise.HybridNetworks`. Defaults to all stages.
        alpha: α, weight of the task losses. Defaults to 1.0.
        beta: β, weight of the distillation terms. Defaults to 1.0.
        gamma: γ, weight of the cross (ensemble) terms. Defaults to 1.0.
        detach_ensemble: Whether Y^ens is a fixed target. With False, the cross terms also
            send gradients through Y^ens into every hybrid (the losses must accept
            ``detach_target``, as KDLoss and DISTLoss do). Defaults to True.
        recompute_logit_terms: Whether every distillation and cross term keeps only its two
            logit inputs for backward and recomputes the rest there (activation
            checkpointing of the loss). Same losses and gradients, for a second forward of
            each term in backward; it saves the terms' intermediates (several copies of each
            logit map per term), large for dense detectors, whose logits have a row per
            position and FPN level (docs/benchmark.md). Defaults to False.
        data_preprocessor: As for :class:`Distiller`.
        init_cfg: Initialization config of the distiller itself.
    """

    def __init__(self,
                 student: Union[dict, BaseModel],
                 teacher: dict,
                 distill_losses: Dict[str, dict],
                 hybrids: Optional[dict] = None,
                 alpha: float = 1.0,
                 beta: float = 1.0,
                 gamma: float = 1.0,
                 detach_ensemble: bool = True,
                 recompute_logit_terms: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if teacher.get('class_index_map') is not None:
            raise ValueError('model.teacher.class_index_map: block-wise hybrids end in the '
                             "teacher's own head, so its classes must be the student's")
        super().__init__(student, teacher, distill_losses, student_loss_weight=alpha,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        for name, compared in self.compared_outputs.items():
            if compared != (LOGITS, LOGITS):
                raise ValueError(f'model.distill_losses.{name}: block-wise distillation '
                                 'compares logits; remove student_output / teacher_output')
            if self._teacher_losses[SINGLE].levels[name] is not None:
                raise ValueError(f'model.distill_losses.{name}.levels: block-wise distillation '
                                 'compares every level of the logits; remove levels')
            if getattr(self.distill_losses[name], 'requires_labels', False):
                raise ValueError(f'model.distill_losses.{name}: block-wise distillation takes '
                                 'losses between two sets of logits (KD, DIST), not '
                                 f'{type(self.distill_losses[name]).__name__}')
        self.hybrids = HybridNetworks(self.student, self.teacher,
                                      cast(HybridTaskAdapter, self.adapter),
                                      **dict(hybrids or {}))
        self.beta, self.gamma = beta, gamma
        self.detach_ensemble = detach_ensemble
        if not isinstance(recompute_logit_terms, bool):
            raise TypeError('model.recompute_logit_terms: expected True or False, got '
                            f'{recompute_logit_terms!r}')
        self.recompute_logit_terms = recompute_logit_terms
        if not detach_ensemble:
            _check_losses_take_detach_target(self.distill_losses)
        self.student_recorder = ModuleOutputRecorder(
            self.student,
            list(self.student_recorder.module_names) + list(self.hybrids.student_modules.values()))

    def loss(self, inputs: torch.Tensor, data_samples: list) -> Dict[str, LossValue]:
        """Every term of α·L_task + β·L_distill + γ·L_cross under its own key."""
        adapter = cast(HybridTaskAdapter, self.adapter)  # every task adapter is one
        with adapter.record_student_step(self.student) as records:
            student_losses, student_outputs, teacher_outputs = self.run_student_and_teachers(
                inputs, data_samples)
        student_outputs, paired_teacher_outputs = self.paired_outputs(student_outputs,
                                                                      teacher_outputs[SINGLE])
        teacher_logits = paired_teacher_outputs[LOGITS]
        student_states = {stage: self.student_recorder.outputs[name]
                          for stage, name in self.hybrids.student_modules.items()}
        scheduled = dict(self.hybrids.scheduled())
        hybrid_outputs = [
            hybrid._replace(logits=paired_levels(hybrid.logits, teacher_logits))
            for hybrid in self.hybrids(student_states, self.teacher, inputs, data_samples,
                                       stages=list(scheduled), records=records,
                                       teacher_logits=teacher_outputs[SINGLE][LOGITS])]
        ensemble = mean_logits([hybrid.logits for hybrid in hybrid_outputs])
        if self.detach_ensemble:
            ensemble = detach_logits(ensemble)

        losses = weighted_task_losses(student_losses, 'student.', self.student_loss_weight)
        losses.update(self._logit_terms('', student_outputs[LOGITS], teacher_logits, ensemble))
        for hybrid in hybrid_outputs:
            prefix, weight = f'hybrid{hybrid.stage}.', scheduled[hybrid.stage]
            losses.update(weighted_task_losses(hybrid.task_losses, prefix,
                                               self.student_loss_weight * weight))
            losses.update(self._logit_terms(prefix, hybrid.logits, teacher_logits, ensemble,
                                            weight))
        losses.update(temperature_logs(self.distill_losses))
        return losses

    def _logit_terms(self, prefix: str, logits: Logits, teacher_logits: Logits,
                     ensemble: Logits, weight: float = 1.0) -> Dict[str, torch.Tensor]:
        """The terms β·w·d(logits, Y^T) and γ·w·d(logits, Y^ens) for every loss d."""
        terms = {}
        for name, loss_module in self.distill_losses.items():
            loss: Callable[..., torch.Tensor] = (
                partial(checkpoint, loss_module, use_reentrant=False)
                if self.recompute_logit_terms else loss_module)
            terms[f'{prefix}distill.{name}'] = (
                self.beta * weight * sum_over_levels(loss, logits, teacher_logits))
            cross_options = {} if self.detach_ensemble else dict(detach_target=False)
            terms[f'{prefix}cross.{name}'] = (self.gamma * weight * sum_over_levels(
                loss, logits, ensemble, **cross_options))
        return terms


def _check_losses_take_detach_target(losses: nn.ModuleDict) -> None:
    """Raise a ``ValueError`` naming a loss whose forward has no ``detach_target``."""
    for name, loss_module in losses.items():
        if 'detach_target' not in inspect.signature(loss_module.forward).parameters:
            raise ValueError(f'model.detach_ensemble=False needs losses that accept '
                             f'detach_target (KDLoss, DISTLoss); model.distill_losses.{name} '
                             f'is a {type(loss_module).__name__}')
