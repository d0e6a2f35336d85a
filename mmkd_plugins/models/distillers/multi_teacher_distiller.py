"""Distillation from several frozen teachers at once, each with its own losses and weight."""
from typing import Dict, List, Optional, Union

import torch
from mmengine.model import BaseModel
from torch import nn

from mmkd_plugins.registry import MODELS
from ..module_output_recorder import ModuleOutputRecorder
from ..teachers import HoldsFrozenTeachers
from .distiller import TEACHER_KEYS, Distiller, HoldsStudent, build_student

BRANCH_KEYS = TEACHER_KEYS + ('distill_losses', 'weight')


@MODELS.register_module()
class MultiTeacherDistiller(HoldsStudent, HoldsFrozenTeachers, BaseModel):
    """Distills several teachers into one student.

    Each teacher is built, loaded strictly, frozen and kept in eval mode exactly as the single
    teacher of :class:`Distiller` (one ``Distiller`` per teacher does that work, all sharing this
    student, which runs its stock ``loss()`` once per step). The loss is the student's own
    losses (times α) plus, for each teacher ``t`` and each of its losses ``d``,
    ``weight_t · d(student, teacher_t)``, logged as ``distill.<t>.<d>``. Checkpoints hold the
    student and trainable loss state (e.g. CTKD temperatures, under ``distill_losses.<t>.``),
    never a teacher.

    Args:
        student: The student model's config (the stock config's ``model``).
        teachers: Teacher name -> ``dict(config=..., checkpoint=..., distill_losses=...,
            weight=1.0, cfg_options=None, channels_last=False, bf16=False)``, with the meaning of
            :class:`Distiller`'s arguments. Names must not contain dots.
        student_loss_weight: α, multiplier of the student's own losses. Defaults to 1.0.
        data_preprocessor: Filled in by the runner, as for :class:`Distiller`.
        init_cfg: Initialization config of the distiller itself.
    """

    def __init__(self,
                 student: Union[dict, BaseModel],
                 teachers: Dict[str, dict],
                 student_loss_weight: float = 1.0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        student = build_student(student, data_preprocessor)
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.student = student
        if not teachers:
            raise ValueError('model.teachers: at least one teacher is needed')
        # One Distiller per teacher: a plain dict, so that the shared student is not registered
        # again under each of them; their teachers and losses are registered below.
        self._branches: Dict[str, Distiller] = {}
        self.weights: Dict[str, float] = {}
        for name, cfg in teachers.items():
            self._branches[name] = self._build_branch(name, dict(cfg), student_loss_weight)
        self.attach_frozen('teachers', {name: branch.teacher
                                        for name, branch in self._branches.items()})
        self.distill_losses = nn.ModuleDict(
            {name: branch.distill_losses for name, branch in self._branches.items()})
        self.teacher_renormalizers = nn.ModuleDict(
            {name: branch.teacher_renormalizer for name, branch in self._branches.items()})
        recorded = {module for branch in self._branches.values()
                    for module in branch.student_recorder.module_names}
        self.student_recorder = ModuleOutputRecorder(self.student, recorded)
        for branch in self._branches.values():  # the student runs once, under this recorder
            branch.student_recorder = self.student_recorder

    def frozen_teachers(self) -> List[nn.Module]:
        """Every teacher, held outside the module tree."""
        return list(self.teachers.values())

    def _build_branch(self, name: str, cfg: dict, student_loss_weight: float) -> Distiller:
        field = f'model.teachers.{name}'
        unknown = set(cfg) - set(BRANCH_KEYS)
        if '.' in name or unknown or 'distill_losses' not in cfg:
            raise ValueError(f'{field}: expected a name without dots and dict(config=..., '
                             'checkpoint=..., distill_losses=..., weight=1.0, '
                             'cfg_options=None, channels_last=False, bf16=False), got keys '
                             f'{sorted(cfg)}')
        self.weights[name] = float(cfg.pop('weight', 1.0))
        losses = cfg.pop('distill_losses')
        return Distiller(student=self.student, teacher=cfg, distill_losses=losses,
                         student_loss_weight=student_loss_weight, teacher_field=field,
                         losses_field=f'{field}.distill_losses')

    def train(self, mode: bool = True) -> 'MultiTeacherDistiller':
        """Switch the student (and loss modules) to ``mode``; the teachers stay in eval."""
        super().train(mode)
        for teacher in self.teachers.values():
            teacher.eval()
        return self

    # mmengine's model interface, as the single-teacher distiller's: 'loss' distills,
    # 'predict' and 'tensor' are the student's.
    forward = Distiller.forward

    def loss(self, inputs: torch.Tensor, data_samples: Optional[list]) -> Dict[str, torch.Tensor]:
        """``student.*`` (times α) and ``distill.<teacher>.<loss>`` (times the teacher's
        weight). As in the single-teacher distiller, teachers whose outputs depend on the batch
        alone run before the student's forward, the others (two-stage) after it."""
        first = next(iter(self._branches.values()))
        teacher_outputs = {name: branch.run_teacher(inputs, data_samples)
                           for name, branch in self._branches.items()
                           if branch.adapter.teacher_logits_per_sample}
        student_losses, student_outputs = first.run_student(inputs, data_samples)
        losses = first.weighted_student_losses(student_losses, prefix='student.')
        for name, branch in self._branches.items():
            if name not in teacher_outputs:
                teacher_outputs[name] = branch.run_teacher(inputs, data_samples)
            losses.update(branch.distill_terms(
                student_outputs, teacher_outputs[name], data_samples,
                prefix=f'distill.{name}.', weight=self.weights[name]))
            losses.update({f'{key}.{name}': value
                           for key, value in branch.temperature_logs().items()})
        return losses
