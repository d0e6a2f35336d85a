"""The distiller: a student trained by its stock losses plus distillation from a frozen teacher."""
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import torch
from mmengine.dist import all_gather_object, get_world_size
from mmengine.model import BaseModel
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import DefaultScope
from torch import nn

from mmkd_plugins.registry import MODELS, SCOPE
from mmkd_plugins.soft_labels import StoredTeacher
from ..module_output_recorder import ModuleOutputRecorder, check_module_names
from ..task_adapters import (ClassifierAdapter, adapter_for, two_classifier_layout,
                             two_classifier_loss)
from ..teachers import (HoldsFrozenTeachers, TeacherOutputCache, bf16_autocast,
                        build_renormalizer, build_teacher, check_bf16_supported,
                        expected_input_size, load_teacher_weights, resized_to, sample_key,
                        to_float32)
from ..teachers.teacher_output_cache import split_per_sample, to_device

LOGITS = 'logits'
TEACHER_KEYS = ('config', 'checkpoint', 'cfg_options', 'channels_last', 'bf16',
                'class_index_map')


class ComparedOutputs(NamedTuple):
    """What one distillation loss compares: ``'logits'`` or a module name, on each side."""
    student: str
    teacher: str


ForwardResults = Union[Dict[str, torch.Tensor], list, torch.Tensor, tuple]


def build_student(student: Union[dict, BaseModel],
                  data_preprocessor: Optional[dict]) -> BaseModel:
    """The student model, built from its config if needed; the runner's top-level
    ``data_preprocessor`` (mmpretrain's style) is its default preprocessor."""
    if isinstance(student, dict):
        student = dict(student)
        if data_preprocessor is not None:
            student.setdefault('data_preprocessor', data_preprocessor)
        student = MMENGINE_MODELS.build(student)
    return student


# Parts of a student that code written for stock models reads from the model (optimizer
# constructors, hooks); a distiller answers for them with where the student's part is.
STUDENT_PARTS = ('backbone', 'neck', 'head', 'bbox_head', 'rpn_head', 'roi_head')


class HoldsStudent:
    """Mixin for distillers (``nn.Module`` subclasses with a ``student``): asking the distiller
    for a part of the student (``model.backbone``) raises an ``AttributeError`` that says where
    the part is and how to run a stock optimizer constructor on the student, instead of
    ``nn.Module``'s bare "has no attribute"."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            student = self.__dict__.get('_modules', {}).get('student')
            if name not in STUDENT_PARTS or not hasattr(student, name):
                raise
            raise AttributeError(
                f"model.{name}: a {type(self).__name__} holds the student's at "
                f'model.student.{name}; code that reads model.{name} must run on the student. '
                'An optimizer constructor of the stock config (optim_wrapper.constructor) runs '
                "on it with optim_wrapper.constructor='mmkd_plugins.StudentOptimWrapperConstructor'"
                " and student_constructor='<the stock constructor>' (runner_type="
                "'mmkd_plugins.DistillationRunner' sets this by itself)") from None


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


@MODELS.register_module()
class Distiller(HoldsStudent, HoldsFrozenTeachers, BaseModel):
    """Distills a frozen teacher into the student of a stock config.

    Works for mmpretrain classifiers, mmdet one-stage detectors and mmdet two-stage detectors
    (see :mod:`mmkd_plugins.models.task_adapters`).

    ``forward(mode='loss')`` runs the student's own ``loss()`` once, exactly as without
    distillation (its assigners, augmentations and losses unchanged), recording the outputs that
    the distillation losses need on the way; runs the teacher once under ``torch.no_grad()``
    computing only those outputs; and returns the student's losses under ``student.<key>`` plus
    each distillation loss under ``distill.<name>``. ``mode='predict'`` and ``'tensor'`` are the
    student's, so the stock evaluators work unchanged.

    The teacher is always in eval mode, never receives gradients, and is held outside the
    module tree (see :class:`~mmkd_plugins.models.teachers.HoldsFrozenTeachers`): no optimizer
    param group, EMA average, DDP synchronisation, ``init_weights()`` or ``state_dict()`` sees
    it. Checkpoints hold the student (and any trainable distillation module) only; the teacher
    is rebuilt from its config and checkpoint.

    Args:
        student: The student model's config (the stock config's ``model``).
        teacher: ``dict(config=..., checkpoint=..., cfg_options=None, channels_last=False,
            bf16=False, class_index_map=None)``: the teacher's config (``'mmpretrain::...'`` or a
            local path) and weights (local path or URL); ``channels_last=True`` runs the teacher in
            channels-last memory format, faster for convolutional teachers on CPUs with oneDNN and
            on GPUs with tensor cores, with the same logits up to float rounding; ``bf16=True`` runs
            its forward under bfloat16 autocast (the losses get float32 logits), faster on GPUs from
            Ampere on and CPUs with AVX512-BF16 or AMX, slower elsewhere; check the teacher's
            accuracy with it first (``tools/analysis/check_teacher_options.py``). See
            ``tools/benchmark.py``. ``class_index_map`` (classifiers): for a teacher of another
            label space (e.g. ImageNet-21k for a 1k student), the teacher class of each student
            class, in the student's order; the teacher's logits of those classes are distilled (its
            softmax renormalised over them).
        distill_losses: Name -> loss config. By default a loss compares the student's and the
            teacher's logits (for detectors: class scores, see the task adapters);
            ``student_output`` / ``teacher_output`` keys in an entry name a
            module (as in ``named_modules()``) whose output is compared instead. Each name must
            contain ``'loss'`` so that the runner sums and logs it.
        student_loss_weight: Multiplier α of the student's own losses. Defaults to 1.0.
        data_preprocessor: Filled in by the runner from the config's ``data_preprocessor``
            (mmpretrain's style) when the student has none; the student's preprocessor is the
            distiller's, so batch augmentations such as Mixup feed both models.
        init_cfg: Initialization config of the distiller itself.
        teacher_field: Where ``teacher`` sits in the config, for error messages. Defaults to
            ``'model.teacher'`` (:class:`MultiTeacherDistiller` names each of its teachers).
        losses_field: Where ``distill_losses`` sits in the config, for error messages.
            Defaults to ``'model.distill_losses'``.
        soft_labels: ``dict(store=<folder>)``: read the teacher's outputs of each sample's
            view from a soft-label store made by ``tools/make_soft_labels.py`` (classifiers;
            :class:`~mmkd_plugins.engine.DistillationRunner` makes the training pipeline
            replay the store's views, see
            :mod:`mmkd_plugins.soft_labels`). The teacher is then never built: ``teacher`` is
            only compared with the store's. Defaults to None (the live teacher).
    """

    def __init__(self,
                 student: Union[dict, BaseModel],
                 teacher: dict,
                 distill_losses: Dict[str, dict],
                 student_loss_weight: float = 1.0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 teacher_field: str = 'model.teacher',
                 losses_field: str = 'model.distill_losses',
                 soft_labels: Optional[dict] = None) -> None:
        student = build_student(student, data_preprocessor)
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.student = student
        self.adapter = adapter_for(student)
        # a head with a distillation classifier learns from the teacher with that classifier
        self.student_has_two_classifiers = (
            self.adapter is ClassifierAdapter
            and two_classifier_layout(student.head) is not None)

        teacher = dict(teacher)
        unknown = set(teacher) - set(TEACHER_KEYS)
        if unknown or 'config' not in teacher:
            raise ValueError(f'{teacher_field}: expected dict(config=..., checkpoint=..., '
                             'cfg_options=None, channels_last=False, bf16=False, '
                             'class_index_map=None), got keys '
                             f'{sorted(teacher)}')
        self.stored_teacher: Optional[StoredTeacher] = None
        if soft_labels is None:
            self._set_up_teacher(teacher, teacher_field)
        else:
            self._set_up_stored_teacher(soft_labels, teacher)

        self.student_loss_weight = student_loss_weight
        self.distill_losses, self.compared_outputs = _build_distill_losses(distill_losses,
                                                                           losses_field)
        self._check_label_losses(losses_field)
        student_modules = {o.student for o in self.compared_outputs.values()} - {LOGITS}
        teacher_modules = {o.teacher for o in self.compared_outputs.values()} - {LOGITS}
        check_module_names(self.student, student_modules, f'{losses_field}.student_output')
        if self.stored_teacher is not None:
            self.stored_teacher.check_losses(self.distill_losses, {
                name: compared == (LOGITS, LOGITS)
                for name, compared in self.compared_outputs.items()
            }, losses_field)
        else:
            check_module_names(self.teacher, teacher_modules, f'{losses_field}.teacher_output')
            self._check_teacher_runs_compared_modules(losses_field)
            self.teacher_recorder = ModuleOutputRecorder(self.teacher, teacher_modules)
        self.student_recorder = ModuleOutputRecorder(
            self.student, student_modules | set(self.adapter.recorded_modules(self.student)))
        self.teacher_cache: Optional[TeacherOutputCache] = None

    def _set_up_teacher(self, teacher: dict, teacher_field: str) -> None:
        """Build the frozen teacher, load its weights, and set up its inputs and precision."""
        self.attach_frozen('teacher', build_teacher(
            teacher['config'], teacher.get('cfg_options'), teacher_field))
        class_index_map = teacher.get('class_index_map')
        if class_index_map is None:
            self.adapter.check_pair(self.student, self.teacher, teacher_field)
        elif self.adapter is not ClassifierAdapter:
            raise ValueError(f'{teacher_field}.class_index_map: maps the classes of a '
                             f'classification teacher; the student is a {self.adapter.task}')
        else:
            class_index_map = list(class_index_map)
            self.adapter.check_pair(self.student, self.teacher, teacher_field, class_index_map)
            self.register_buffer('teacher_class_index_map', torch.tensor(class_index_map),
                                 persistent=False)
        load_teacher_weights(self.teacher, teacher.get('checkpoint'), teacher_field)
        self.teacher_renormalizer = build_renormalizer(
            self.student.data_preprocessor, getattr(self.teacher, 'data_preprocessor', None))
        # A teacher built for one input size (a 384-px Swin for a 224-px student) gets the
        # batch resized to it where the task allows (classifiers).
        self.teacher_input_size = (expected_input_size(self.teacher)
                                   if self.adapter.teacher_inputs_resizable else None)
        self.teacher_channels_last = bool(teacher.get('channels_last', False))
        if self.teacher_channels_last:
            self.teacher.to(memory_format=torch.channels_last)
        self.teacher_bf16 = bool(teacher.get('bf16', False))
        if self.teacher_bf16:
            check_bf16_supported(f'{teacher_field}.bf16')

    def _set_up_stored_teacher(self, soft_labels: dict, teacher: dict) -> None:
        """Read the teacher's outputs from a soft-label store: no teacher network is built.

        Raises:
            ValueError: a student that is not a classifier, batch augments (Mixup/CutMix),
                or a store made for another teacher or class count.
        """
        if self.adapter is not ClassifierAdapter:
            raise ValueError(f'model.soft_labels: a soft-label store serves classifiers; for a '
                             f'{self.adapter.task} student, distill from the live teacher '
                             '(TeacherCacheHook caches deterministic pipelines)')
        if getattr(self.student.data_preprocessor, 'batch_augments', None) is not None:
            raise ValueError(
                'model.soft_labels: the data preprocessor\'s batch_augments (Mixup/CutMix) mix '
                'images, and the teacher\'s output on a mixed image is not the mix of its '
                'stored outputs; remove the batch augments or distill from the live teacher')
        self.stored_teacher = StoredTeacher(soft_labels, teacher)
        self.stored_teacher.check_student_classes(
            getattr(getattr(self.student, 'head', None), 'num_classes', None))
        self.attach_frozen('teacher', None)

    def frozen_teachers(self) -> List[nn.Module]:
        """The teacher, held outside the module tree (none with a soft-label store)."""
        return [] if self.teacher is None else [self.teacher]

    def train(self, mode: bool = True) -> 'Distiller':
        """Switch the student (and distillation modules) to ``mode``; the teacher stays in eval."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def get_layer_depth(self, param_name: str) -> Tuple[int, int]:
        """A parameter's layer depth and the number of depths, for mmpretrain's layer-wise
        learning-rate decay (``LearningRateDecayOptimWrapperConstructor``, used by the BEiT,
        MAE, CAE, EVA fine-tuning configs): the student's own answer for ``student.*``; the
        distiller's own parameters (connectors, learned temperatures) are not in the student's
        backbone and so count as its last depth, as its head does (learning-rate scale 1).

        Args:
            param_name: The parameter's name in the distiller, e.g.
                ``'student.backbone.layers.3.attn.qkv.weight'``.

        Raises:
            NotImplementedError: the student has no ``get_layer_depth`` (not an mmpretrain
                classifier), naming the field.
        """
        if not hasattr(self.student, 'get_layer_depth'):
            raise NotImplementedError(
                f'model.student: layer-wise learning-rate decay (optim_wrapper.constructor) '
                f'needs a student with get_layer_depth(); a {type(self.student).__name__} has '
                'none')
        if param_name.startswith('student.'):
            param_name = param_name[len('student.'):]
        return self.student.get_layer_depth(param_name)

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
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(inputs, data_samples, mode=mode)

    def loss(self, inputs: torch.Tensor, data_samples: Optional[list]) -> Dict[str, torch.Tensor]:
        """The student's stock losses (``student.*``, times α) and the distillation losses
        (``distill.*``)."""
        student_losses, student_outputs, teacher_outputs = self.run_student_and_teacher(
            inputs, data_samples)
        losses = self.weighted_student_losses(student_losses, prefix='student.')
        losses.update(self.distill_terms(student_outputs, teacher_outputs, data_samples,
                                         prefix='distill.'))
        losses.update(self.temperature_logs())
        return losses

    def distill_terms(self, student_outputs: dict, teacher_outputs: dict, data_samples: list,
                      prefix: str, weight: float = 1.0) -> Dict[str, torch.Tensor]:
        """``weight`` times each distillation loss between the compared outputs, keyed
        ``<prefix><loss name>``."""
        terms = {}
        for name, loss_module in self.distill_losses.items():
            compared = self.compared_outputs[name]
            terms[f'{prefix}{name}'] = scale_loss(sum_over_levels(
                loss_module, student_outputs[compared.student],
                teacher_outputs[compared.teacher], **self.label_kwargs(loss_module, data_samples)),
                weight)
        return terms

    def temperature_logs(self) -> Dict[str, torch.Tensor]:
        """``tau_<name>`` and ``lambda_<name>`` of each loss with a learnable temperature
        (CTKD), for the log (their keys hold no 'loss', so they are not summed)."""
        logs = {}
        for name, loss_module in self.distill_losses.items():
            temperature = getattr(loss_module, 'temperature', None)
            if temperature is not None:
                suffix = name.replace('loss', '')
                logs[f'tau{suffix}'] = temperature.last_tau
                logs[f'lambda{suffix}'] = torch.tensor(temperature.last_lambda)
        return logs

    def label_kwargs(self, loss_module: nn.Module, data_samples: list) -> dict:
        """``dict(labels=(B,) ground-truth classes)`` for a loss that ``requires_labels``
        (DKD), else nothing."""
        if not getattr(loss_module, 'requires_labels', False):
            return {}
        return dict(labels=torch.cat([sample.gt_label for sample in data_samples]))

    def _check_label_losses(self, losses_field: str) -> None:
        """Losses that need labels: classifiers with plain labels, on logits."""
        for name, loss_module in self.distill_losses.items():
            if not getattr(loss_module, 'requires_labels', False):
                continue
            field = f'{losses_field}.{name}'
            if self.adapter.task != ClassifierAdapter.task:
                raise ValueError(f'{field}: {type(loss_module).__name__} needs class labels per '
                                 f'sample; it is for classifiers, not {self.adapter.task}')
            if getattr(self.student.data_preprocessor, 'batch_augments', None) is not None:
                raise ValueError(f'{field}: {type(loss_module).__name__} needs one class per '
                                 'sample, but the batch augments (Mixup/CutMix) mix labels')
            if self.compared_outputs[name] != (LOGITS, LOGITS):
                raise ValueError(f'{field}: {type(loss_module).__name__} compares logits')

    def _check_teacher_runs_compared_modules(self, losses_field: str) -> None:
        """A ``teacher_output`` must name a module that the teacher's forward for distillation
        runs (it skips, e.g., a dense head's box branch and a two-stage detector's RPN)."""
        for name, compared in self.compared_outputs.items():
            if compared.teacher != LOGITS and not self.adapter.teacher_runs(
                    self.teacher, self.student, compared.teacher):
                raise ValueError(
                    f'{losses_field}.{name}.teacher_output: the teacher never runs '
                    f'{compared.teacher!r}; for {self.adapter.task} it computes only '
                    f'{self.adapter.teacher_computes}')

    def run_student_and_teacher(self, inputs: torch.Tensor, data_samples: Optional[list]
                                ) -> Tuple[Dict[str, torch.Tensor], dict, dict]:
        """:meth:`run_student` and :meth:`run_teacher` on one batch. The teacher runs first
        when its outputs depend on the batch alone (classifiers, dense detectors): its forward
        then does not run beside the student's activations kept for backward, where it was
        measured slower on CPU (README, benchmark). A two-stage teacher scores the student's
        sampled RoIs of the step, so it runs after the student.

        Args:
            inputs: The preprocessed batch, (B, 3, H, W).
            data_samples: The batch's data samples.

        Returns:
            The student's own losses, its compared outputs and the teacher's (as
            :meth:`run_student` and :meth:`run_teacher` give them).
        """
        if self.adapter.teacher_logits_per_sample:
            teacher_outputs = self.run_teacher(inputs, data_samples)
            student_losses, student_outputs = self.run_student(inputs, data_samples)
        else:
            student_losses, student_outputs = self.run_student(inputs, data_samples)
            teacher_outputs = self.run_teacher(inputs, data_samples)
        return student_losses, student_outputs, teacher_outputs

    def run_student(self, inputs: torch.Tensor,
                    data_samples: Optional[list]) -> Tuple[Dict[str, torch.Tensor], dict]:
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

    def run_teacher(self, inputs: torch.Tensor, data_samples: Optional[list]) -> dict:
        """The teacher's compared outputs (``'logits'`` and named modules), without autograd;
        from the cache for the samples it holds, when it is enabled.

        Args:
            inputs: The student-normalized batch, (B, 3, H, W).
            data_samples: The batch's data samples (their metainfo keys the cache).
        """
        if self.stored_teacher is not None:
            return {LOGITS: self.stored_teacher.logits(data_samples, inputs.device)}
        if self.teacher_cache is not None:
            return {LOGITS: self._cached_teacher_logits(inputs, data_samples)}
        with self.teacher_recorder:
            teacher_outputs = {LOGITS: self._teacher_logits(inputs, data_samples)}
        teacher_outputs.update(to_float32(self.teacher_recorder.outputs))
        return teacher_outputs

    def _teacher_logits(self, inputs: torch.Tensor, data_samples: Optional[list] = None):
        """The teacher's logits for a student-normalized batch (B, 3, H, W), without
        autograd, in float32 (computed under bf16 autocast when ``teacher.bf16`` is set)."""
        with torch.no_grad(), bf16_autocast(inputs.device.type, self.teacher_bf16):
            logits = self.adapter.teacher_logits(
                self.teacher, self.teacher_inputs(inputs, data_samples), self.student_recorder)
        if getattr(self, 'teacher_class_index_map', None) is not None:
            logits = logits[:, self.teacher_class_index_map]  # the student's classes, in order
        return to_float32(logits)

    def teacher_inputs(self, inputs: torch.Tensor,
                       data_samples: Optional[list] = None) -> torch.Tensor:
        """The batch as the teacher takes it: re-normalized (its padding the teacher's own pad
        value, told apart by the samples' ``img_shape``), resized to the input size a classifier
        teacher's backbone was built for (bilinear), in channels-last memory format when
        ``teacher.channels_last`` is set. Shape (B, 3, H, W), or (B, 3, H_t, W_t) resized."""
        inputs = resized_to(self.teacher_renormalizer(inputs, data_samples),
                            self.teacher_input_size)
        if self.teacher_channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def enable_teacher_cache(self, max_bytes: Optional[int] = None,
                             share_across_ranks: bool = True) -> TeacherOutputCache:
        """Serve teacher logits from a per-sample cache from now on (see
        :class:`~mmkd_plugins.engine.TeacherCacheHook`, which also checks the pipeline).

        Args:
            max_bytes: The cache's bound in bytes (None: no bound).
            share_across_ranks: Under DDP, every rank also stores the logits the other ranks
                computed (gathered each step), so that a sample the sampler gives to another
                rank in a later epoch is cached there too.

        Raises:
            ValueError: the teacher's logits are not per sample (two-stage detectors score the
                student's RoIs of each step), a loss compares named module outputs, or a
                soft-label store is in use.
        """
        if self.stored_teacher is not None:
            raise ValueError('the teacher cache and a soft-label store (model.soft_labels) '
                             'exclude each other: the store already removes the teacher')
        if not self.adapter.teacher_logits_per_sample:
            raise ValueError('the teacher cache needs teacher logits that depend on each sample '
                             f'alone; a {self.adapter.task} teacher scores the student\'s RoIs of '
                             'each step')
        named = [name for name, compared in self.compared_outputs.items()
                 if compared != (LOGITS, LOGITS)]
        if named:
            raise ValueError(f'the teacher cache holds logits only; model.distill_losses.'
                             f'{named[0]} compares named module outputs')
        self.teacher_cache = TeacherOutputCache(max_bytes)
        self.teacher_cache_shared = share_across_ranks
        return self.teacher_cache

    def _cached_teacher_logits(self, inputs: torch.Tensor, data_samples: list):
        """Teacher logits of the batch: computed for the samples the cache lacks, stored (with
        the other ranks' new ones when shared), and joined with the cached ones in batch
        order."""
        keys = [sample_key(sample) for sample in data_samples]
        missing = self.teacher_cache.missing(keys)
        computed = {}
        if missing:
            subset = inputs[torch.tensor(missing, device=inputs.device)]
            computed = dict(zip(missing, split_per_sample(self._teacher_logits(
                subset, [data_samples[index] for index in missing]), len(missing))))
        new_entries = [(keys[index], computed[index]) for index in missing]
        if self.teacher_cache_shared and get_world_size() > 1:  # a collective: every rank
            new_entries = [entry for rank_entries in all_gather_object(
                [(key, to_device(sample, 'cpu')) for key, sample in new_entries])
                           for entry in rank_entries]
        for key, sample in new_entries:
            self.teacher_cache.store_sample(key, sample)
        return self.teacher_cache.batch(keys, computed, inputs.device)

    def weighted_student_losses(self, task_losses: dict, prefix: str,
                                weight: float = 1.0) -> Dict[str, torch.Tensor]:
        """Task losses times α·``weight`` (other logged values unscaled), keys prefixed."""
        return {
            f'{prefix}{key}': scale_loss(value, self.student_loss_weight * weight
                                     if 'loss' in key else 1.0)
            for key, value in task_losses.items()
        }


def _build_distill_losses(configs: Dict[str, dict],
                          field: str) -> Tuple[nn.ModuleDict, Dict[str, ComparedOutputs]]:
    """The loss modules of ``distill_losses`` (at ``field`` in the config) and what each one
    compares."""
    losses, compared = nn.ModuleDict(), {}
    for name, cfg in configs.items():
        if 'loss' not in name:
            raise ValueError(f"{field}: the name {name!r} must contain 'loss' "
                             "(e.g. 'loss_kd') so that the runner sums and logs it")
        cfg = dict(cfg)
        compared[name] = ComparedOutputs(student=cfg.pop('student_output', LOGITS),
                                         teacher=cfg.pop('teacher_output', LOGITS))
        losses[name] = build_distill_loss(f'{field}.{name}', cfg)
    if not losses:
        raise ValueError(f'{field}: at least one distillation loss is needed')
    return losses, compared


def sum_over_levels(loss_module: nn.Module, student_output: Union[torch.Tensor, list],
                    teacher_output: Union[torch.Tensor, list], **kwargs) -> torch.Tensor:
    """The loss of one tensor pair, or the sum over the levels of per-level outputs (FPN);
    ``kwargs`` go to every call of ``loss_module``."""
    if not isinstance(student_output, (list, tuple)):
        return loss_module(student_output, teacher_output, **kwargs)
    if len(student_output) != len(teacher_output):
        raise ValueError(f'the student has {len(student_output)} output levels and the teacher '
                         f'{len(teacher_output)}')
    return sum(loss_module(s, t, **kwargs) for s, t in zip(student_output, teacher_output))


def scale_loss(value: Union[torch.Tensor, List[torch.Tensor]],
               scale: float) -> Union[torch.Tensor, List[torch.Tensor]]:
    """A loss (or per-level list of losses) times ``scale``."""
    if scale == 1.0:
        return value
    if isinstance(value, (list, tuple)):
        return [item * scale for item in value]
    return value * scale
