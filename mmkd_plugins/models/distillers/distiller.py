"""The distiller: a student trained by its stock losses plus distillation from frozen teachers."""

from typing import Dict, List, Optional, Tuple, Union, cast

import torch
from mmengine.model import BaseModel
from torch import nn

from mmkd_plugins.registry import MODELS
from ..module_output_recorder import ModuleOutputRecorder
from ..task_adapters import adapter_for, two_classifier_layout, two_classifier_loss
from ..teachers import (LOGITS, CachedTeacher, LiveTeacher, StoredTeacher, TeacherOutputCache,
                        TeacherSource)
from .distill_losses import (ComparedOutputs, LossValue, TeacherLosses, build_teacher_losses,
                             distill_terms, temperature_logs, weighted_task_losses)
from .student import HoldsStudent, build_student
from .teacher_entries import SINGLE, teacher_entries

ForwardResults = Union[Dict[str, LossValue], list, torch.Tensor, tuple]


@MODELS.register_module()
class Distiller(HoldsStudent, BaseModel):
    """Distills one or several frozen teachers into the student of a stock config.

    Works for mmpretrain classifiers, mmdet one-stage detectors and mmdet two-stage detectors
    (see :mod:`mmkd_plugins.models.task_adapters`).

    ``forward(mode='loss')`` runs the student's own ``loss()`` once, exactly as without
    distillation (its assigners, augmentations and losses unchanged), recording the outputs that
    the distillation losses need on the way; asks each teacher's source for only those outputs
    (a live teacher runs once under ``torch.no_grad()``); and returns the student's losses
    (times α) under ``student.<key>`` plus each distillation loss under ``distill.<name>``
    (several teachers: ``distill.<teacher>.<name>``, times the teacher's weight).
    ``mode='predict'`` and ``'tensor'`` are the student's, so the stock evaluators work
    unchanged.

    A teacher is always in eval mode, never receives gradients, and is held outside the module
    tree (see :class:`~mmkd_plugins.models.teachers.HoldsFrozenTeachers`): no optimizer param
    group, EMA average, DDP synchronisation, ``init_weights()`` or ``state_dict()`` sees it.
    Checkpoints hold the student (and any trainable distillation module) only; a teacher is
    rebuilt from its config and checkpoint.

    Args:
        student: The student model's config (the stock config's ``model``).
        teacher: ``dict(config=..., checkpoint=..., cfg_options=None, channels_last=False,
            bf16=False, class_index_map=None)``: the teacher's config (``'mmpretrain::...'`` or
            a local path) and weights (local path or URL), and how it runs (see
            :class:`~mmkd_plugins.models.teachers.LiveTeacher`; the user guide on teachers).
        distill_losses: Name -> loss config. By default a loss compares the student's and the
            teacher's logits (for detectors: class scores, see the task adapters);
            ``student_output`` / ``teacher_output`` keys in an entry name a module (as in
            ``named_modules()``) whose output is compared instead. Each name must contain
            ``'loss'`` so that the runner sums and logs it.
        student_loss_weight: Multiplier α of the student's own losses. Defaults to 1.0.
        data_preprocessor: Filled in by the runner from the config's ``data_preprocessor``
            (mmpretrain's style) when the student has none; the student's preprocessor is the
            distiller's, so batch augmentations such as Mixup feed every model.
        init_cfg: Initialization config of the distiller itself.
        soft_labels: ``dict(store=<folder>)``: read the teacher's outputs of each sample's view
            from a soft-label store made by ``tools/make_soft_labels.py`` (one teacher;
            classifiers; :class:`~mmkd_plugins.engine.DistillationRunner` makes the training
            pipeline replay the store's views, see :mod:`mmkd_plugins.soft_labels`). The
            teacher is then never built: ``teacher`` is only compared with the store's.
            Defaults to None (the live teacher).
        teachers: Instead of ``teacher`` and ``distill_losses``, several teachers: name (no
            dots) -> ``dict(config=..., checkpoint=..., distill_losses=..., weight=1.0, ...)``
            with the keys of ``teacher``.
    """

    def __init__(self,
                 student: Union[dict, BaseModel],
                 teacher: Optional[dict] = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 student_loss_weight: float = 1.0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 soft_labels: Optional[dict] = None,
                 teachers: Optional[Dict[str, dict]] = None) -> None:
        student = build_student(student, data_preprocessor)
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.student = student
        self.student_loss_weight = student_loss_weight
        self.adapter = adapter_for(student)
        # a head with a distillation classifier learns from the teacher with that classifier
        self.student_has_two_classifiers = (self.adapter.image_classification and
                                            two_classifier_layout(student.head) is not None)
        self.teacher_sources = nn.ModuleDict()
        self._teacher_losses: Dict[str, TeacherLosses] = {}
        self.lone_teacher = teachers is None
        if not self.lone_teacher:
            self.distill_losses = nn.ModuleDict()  # by teacher, then by loss name
        student_modules = set(self.adapter.recorded_modules(student))
        for entry in teacher_entries(teacher, distill_losses, teachers, soft_labels):
            source: Union[LiveTeacher, StoredTeacher] = (
                LiveTeacher(entry.config, student, self.adapter, entry.field)
                if soft_labels is None else
                StoredTeacher(soft_labels, entry.config, student, self.adapter))
            terms = build_teacher_losses(entry, self.adapter, student)
            source.check_losses(terms.losses, terms.compared, student, entry.losses_field)
            student_modules |= terms.student_modules
            self.teacher_sources[entry.name] = source
            self._teacher_losses[entry.name] = terms
            if self.lone_teacher:
                self.distill_losses = terms.losses
            else:
                self.distill_losses[entry.name] = terms.losses
        self.student_recorder = ModuleOutputRecorder(student, student_modules)

    @property
    def teacher(self) -> Optional[BaseModel]:
        """The frozen teacher network (None with a soft-label store).

        Raises:
            TypeError: several teachers (see :attr:`teachers`).
        """
        return self.teacher_source.network

    @property
    def teachers(self) -> Dict[str, Optional[BaseModel]]:
        """Every frozen teacher network by name (a lone teacher is named ``'teacher'``)."""
        return {name: source.network for name, source in self.teacher_sources.items()}

    @property
    def compared_outputs(self) -> Dict[str, ComparedOutputs]:
        """What each of the lone teacher's losses compares, by loss name.

        Raises:
            TypeError: several teachers (see :attr:`teacher_source`).
        """
        self._require_lone_teacher()
        return self._teacher_losses[SINGLE].compared

    @property
    def teacher_source(self) -> TeacherSource:
        """Where the lone teacher's outputs come from (live, cached or stored).

        Raises:
            TypeError: several teachers (``teacher_sources`` holds them by name).
        """
        self._require_lone_teacher()
        return cast(TeacherSource, self.teacher_sources[SINGLE])

    def _require_lone_teacher(self) -> None:
        """Raise a ``TypeError`` when this distiller has several teachers."""
        if not self.lone_teacher:
            raise TypeError(f'this distiller has {len(self.teacher_sources)} teachers '
                            '(model.teachers): use .teachers or .teacher_sources[<name>]')

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'tensor') -> ForwardResults:
        """mmengine's model interface: ``'loss'`` distills, ``'predict'``/``'tensor'`` are the
        student's.

        Args:
            inputs: The preprocessed batch, (B, 3, H, W).
            data_samples: The batch's data samples (labels, image metas).
            mode: ``'loss'``, ``'predict'`` or ``'tensor'``.
        """
        if mode == 'loss':  # a training batch: its data samples hold the labels
            return self.loss(inputs, cast(list, data_samples))
        return self.student(inputs, data_samples, mode=mode)

    def loss(self, inputs: torch.Tensor, data_samples: list) -> Dict[str, LossValue]:
        """The student's stock losses (``student.*``, times α) and the distillation losses
        (``distill.*``), with learned temperatures for the log."""
        student_losses, student_outputs, teacher_outputs = self.run_student_and_teachers(
            inputs, data_samples)
        losses = weighted_task_losses(student_losses, 'student.', self.student_loss_weight)
        for name, terms in self._teacher_losses.items():
            compared_student, compared_teacher = self.paired_outputs(student_outputs,
                                                                     teacher_outputs[name])
            losses.update(distill_terms(terms.losses, terms.compared, compared_student,
                                        compared_teacher, data_samples, terms.prefix,
                                        terms.weight, terms.levels))
            losses.update(temperature_logs(terms.losses, terms.log_suffix))
        return losses

    def paired_outputs(self, student_outputs: dict, teacher_outputs: dict) -> Tuple[dict, dict]:
        """The student's and one teacher's compared outputs as the losses compare them (the
        adapter's ``paired_outputs``: a DETR student decodes the teacher's distillation boxes
        here)."""
        return self.adapter.paired_outputs(self.student_recorder, student_outputs,
                                           teacher_outputs)

    def run_student_and_teachers(self, inputs: torch.Tensor, data_samples: list
                                 ) -> Tuple[Dict[str, torch.Tensor], dict, Dict[str, dict]]:
        """:meth:`run_student` and every teacher's outputs on one batch.

        Teachers whose outputs depend on the batch alone (classifiers, dense detectors, cache,
        store) run first, so that their forward does not run beside the student's activations
        kept for backward (the order's cost: docs/benchmark.md). A two-stage teacher scores the
        student's sampled RoIs of the step, so it runs after the student.

        Returns:
            The student's own losses, its compared outputs (as :meth:`run_student` gives them)
            and each teacher's outputs by teacher name.
        """
        teacher_outputs = {name: self.run_teacher(inputs, data_samples, name)
                           for name, source in self.teacher_sources.items()
                           if source.outputs_per_sample}
        student_losses, student_outputs = self.run_student(inputs, data_samples)
        for name in self.teacher_sources:
            if name not in teacher_outputs:
                teacher_outputs[name] = self.run_teacher(inputs, data_samples, name)
        return student_losses, student_outputs, teacher_outputs

    def run_student(self, inputs: torch.Tensor,
                    data_samples: list) -> Tuple[Dict[str, torch.Tensor], dict]:
        """The student's stock ``loss()``, recording what the distillation losses compare.

        Returns:
            The student's own losses, and its compared outputs by module name (plus
            ``'logits'``); every recorded module's output stays in ``student_recorder``.
        """
        with self.student_recorder:
            if self.student_has_two_classifiers:  # DeiT, LeViT, EfficientFormer heads
                student_losses, logits = two_classifier_loss(self.student, inputs, data_samples)
            else:
                student_losses = self.student.loss(inputs, data_samples)
                logits = self.adapter.student_logits(self.student_recorder)
        student_outputs = dict(self.student_recorder.outputs)
        student_outputs[LOGITS] = logits
        return student_losses, student_outputs

    def run_teacher(self, inputs: torch.Tensor, data_samples: Optional[list],
                    name: str = SINGLE) -> Dict[str, Union[torch.Tensor, List[torch.Tensor]]]:
        """One teacher's compared outputs (``'logits'`` and named modules, float32), without
        autograd, from its source (live, cached or stored).

        Args:
            inputs: The student-normalized batch, (B, 3, H, W).
            data_samples: The batch's data samples.
            name: The teacher's name (a lone teacher's is ``'teacher'``).
        """
        return cast(TeacherSource, self.teacher_sources[name]).outputs(inputs, data_samples,
                                                                       self.student_recorder)

    def enable_teacher_cache(self, max_bytes: Optional[int] = None,
                             share_across_ranks: bool = True) -> TeacherOutputCache:
        """Serve the teacher's logits from a per-sample cache from now on (see
        :class:`~mmkd_plugins.engine.TeacherCacheHook`, which also checks the pipeline).

        Args:
            max_bytes: The cache's bound in bytes (None: no bound).
            share_across_ranks: See :class:`~mmkd_plugins.models.teachers.CachedTeacher`.

        Raises:
            ValueError: several teachers, a soft-label store, teacher logits that are not per
                sample (two-stage detectors score the student's RoIs of each step), or a loss
                that compares named module outputs.
        """
        if not self.lone_teacher:
            raise ValueError('the teacher cache serves one teacher; model.teachers has '
                             f'{len(self.teacher_sources)}')
        cached = CachedTeacher.in_front_of(self.teacher_source, self.compared_outputs,
                                           max_bytes, share_across_ranks)
        self.teacher_sources[SINGLE] = cached
        return cached.cache


# Configs written for the former class of several teachers build the same distiller.
MultiTeacherDistiller = MODELS.register_module('MultiTeacherDistiller', module=Distiller)
