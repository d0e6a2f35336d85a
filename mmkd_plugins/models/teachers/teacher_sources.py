"""Where a distiller's teacher outputs come from: the frozen teacher network run on each batch
(:class:`LiveTeacher`), a per-sample cache in front of it (:class:`CachedTeacher`), or a soft-label
store (:class:`~mmkd_plugins.models.teachers.StoredTeacher`).

Every source answers :meth:`outputs` with the teacher's float32 outputs that the distillation losses
compare: ``'logits'`` (classifiers: (B, C); detectors: what the task adapter compares) and, for a
live teacher, the outputs of the modules the losses name.
"""

from typing import Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, cast

import torch
from mmengine.dist import all_gather_object, get_world_size
from mmengine.model import BaseModel
from torch import nn

from ..module_output_recorder import ModuleOutputRecorder, check_module_names
from .frozen_teachers import HoldsFrozenTeachers
from .input_renormalizer import build_renormalizer, expected_input_size, resized_to
from .teacher_builder import build_teacher, load_teacher_weights
from .teacher_output_cache import (Logits, TeacherOutputCache, sample_key, split_per_sample,
                                   to_device)
from .teacher_precision import bf16_autocast, check_bf16_supported, to_float32

LOGITS = 'logits'
# The compared boxes of the shared distillation points (DETR-family students), beside the logits.
BOXES = 'boxes'
TEACHER_KEYS = ('config', 'checkpoint', 'cfg_options', 'channels_last', 'bf16',
                'class_index_map')
# The optional keys of TEACHER_KEYS with their defaults, for messages.
TEACHER_OPTIONS = 'cfg_options=None, channels_last=False, bf16=False, class_index_map=None'


class TeacherSource(Protocol):
    """What a distiller asks of the source of a teacher's outputs."""

    network: Optional[BaseModel]  # the frozen teacher network, None when it is never built
    outputs_per_sample: bool  # outputs depend on each sample alone (may run before the student)

    def outputs(self, inputs: torch.Tensor, data_samples: Optional[list],
                student_recorder: ModuleOutputRecorder) -> Dict[str, Logits]:
        """The teacher's compared outputs for the student-normalized batch (B, 3, H, W)."""

    def check_losses(self, losses: nn.ModuleDict, compared: Mapping[str, Tuple[str, str]],
                     student: BaseModel, losses_field: str) -> None:
        """At build time: refuse losses the source cannot serve (naming ``losses_field``), and
        prepare what they need.

        (A cache is put in front of a checked live teacher.)
        """


class SourceAdapter(Protocol):
    """What the teacher sources use of the student's task adapter (a
    :class:`~mmkd_plugins.models.task_adapters.TaskAdapter`, which imports this package)."""

    task: str
    teacher_computes: str
    teacher_logits_per_sample: bool
    teacher_inputs_resizable: bool
    image_classification: bool
    teacher_bf16_refusal: str

    @staticmethod
    def teacher_runs(teacher: BaseModel, student: BaseModel, module_name: str) -> bool:
        """Whether the teacher's forward for distillation runs ``module_name``."""

    @staticmethod
    def check_pair(student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Raise naming ``field`` if the teacher cannot teach this student."""

    @staticmethod
    def teacher_logits(teacher: BaseModel, inputs: torch.Tensor,
                       student_calls: ModuleOutputRecorder, data_samples: Optional[list]):
        """The teacher's logits for the teacher-prepared batch ``inputs`` (B, 3, H, W) and its data
        samples (the student's recorded step in ``student_calls``)."""


class ClassMappingAdapter(SourceAdapter, Protocol):
    """An adapter with ``image_classification``, whose pair check also takes a teacher's class index
    map."""

    @staticmethod
    def check_pair(student: BaseModel, teacher: BaseModel, field: str,
                   class_index_map: Optional[Sequence[int]] = None) -> None:
        """Raise naming ``field`` if the teacher cannot teach this student (with the class index
        map, when given)."""


def check_teacher_config(teacher: dict, field: str) -> dict:
    """A copy of a ``teacher`` config, refused with the field named unless its keys are
    :data:`TEACHER_KEYS` with ``config`` among them."""
    teacher = dict(teacher)
    unknown = set(teacher) - set(TEACHER_KEYS)
    if unknown or 'config' not in teacher:
        raise ValueError(f'{field}: expected dict(config=..., checkpoint=..., '
                         f'{TEACHER_OPTIONS}), got keys {sorted(teacher)}')
    return teacher


class LiveTeacher(HoldsFrozenTeachers, nn.Module):
    """The frozen teacher network, run on each batch without autograd.

    The network is held outside the module tree (see
    :class:`~mmkd_plugins.models.teachers.HoldsFrozenTeachers`) and always in eval mode; this
    module holds only non-persistent buffers (the input re-normalizer's and the class index
    map), so it adds nothing to a checkpoint.

    Args:
        teacher: ``dict(config=..., checkpoint=..., cfg_options=None, channels_last=False,
            bf16=False, class_index_map=None)``, as the distiller's ``teacher`` argument.
        student: The student, whose preprocessor normalizes the batch and whose task decides
            what the teacher computes.
        adapter: The student's task adapter (a
            :class:`~mmkd_plugins.models.task_adapters.TaskAdapter`).
        field: Where ``teacher`` sits in the config, for errors.

    Raises:
        ValueError, TypeError: a teacher that cannot teach this student (naming ``field``).
    """

    network: BaseModel  # attached frozen, outside the module tree

    def __init__(self, teacher: dict, student: BaseModel, adapter: SourceAdapter,
                 field: str) -> None:
        super().__init__()
        self.adapter, self.field = adapter, field
        self.attach_frozen('network', build_teacher(teacher['config'],
                                                    teacher.get('cfg_options'), field))
        self.class_index_map: Optional[torch.Tensor]
        class_index_map = teacher.get('class_index_map')
        if class_index_map is None:
            adapter.check_pair(student, self.network, field)
            self.register_buffer('class_index_map', None, persistent=False)
        elif not adapter.image_classification:
            raise ValueError(f'{field}.class_index_map: maps the classes of a classification '
                             f'teacher; the student is a {adapter.task}')
        else:
            cast(ClassMappingAdapter, adapter).check_pair(student, self.network, field,
                                                          list(class_index_map))
            self.register_buffer('class_index_map', torch.tensor(list(class_index_map)),
                                 persistent=False)
        load_teacher_weights(self.network, teacher.get('checkpoint'), field)
        self.renormalizer = build_renormalizer(
            student.data_preprocessor, getattr(self.network, 'data_preprocessor', None))
        # A teacher built for one input size (a 384-px Swin for a 224-px student) gets the
        # batch resized to it where the task allows (classifiers).
        self.input_size = (expected_input_size(self.network)
                           if adapter.teacher_inputs_resizable else None)
        self.channels_last = bool(teacher.get('channels_last', False))
        if self.channels_last:
            self.network.to(memory_format=torch.channels_last)
        self.bf16 = bool(teacher.get('bf16', False))
        if self.bf16:
            if adapter.teacher_bf16_refusal:
                raise ValueError(f'{field}.bf16: {adapter.teacher_bf16_refusal}')
            check_bf16_supported(f'{field}.bf16')
        self.outputs_per_sample = adapter.teacher_logits_per_sample
        self.recorder = ModuleOutputRecorder(self.network, ())

    def frozen_teachers(self) -> List[nn.Module]:
        """The teacher network."""
        return [self.network]

    def train(self, mode: bool = True) -> 'LiveTeacher':
        """The re-normalizer follows ``mode``; the network stays in eval mode."""
        super().train(mode)
        self.network.eval()
        return self

    def check_losses(self, losses: nn.ModuleDict, compared: Mapping[str, Tuple[str, str]],
                     student: BaseModel, losses_field: str) -> None:
        """Record, from now on, the teacher modules that the losses compare (``teacher_output``
        entries), so that :meth:`outputs` returns their outputs too.

        Args:
            losses: The distillation losses by name.
            compared: Name -> the (student, teacher) outputs the loss compares.
            student: The student.
            losses_field: Where the losses sit in the config.

        Raises:
            ValueError: a name that is not a module of the teacher, or one that the teacher's
                forward for distillation never runs, naming ``losses_field``.
        """
        module_names = {teacher for _, teacher in compared.values()} - {LOGITS, BOXES}
        check_module_names(self.network, module_names, f'{losses_field}.teacher_output')
        for name, (_, module_name) in compared.items():
            if module_name in module_names and not self.adapter.teacher_runs(
                    self.network, student, module_name):
                raise ValueError(
                    f'{losses_field}.{name}.teacher_output: the teacher never runs '
                    f'{module_name!r}; for {self.adapter.task} it computes only '
                    f'{self.adapter.teacher_computes}')
        self.recorder = ModuleOutputRecorder(self.network, module_names)

    def outputs(self, inputs: torch.Tensor, data_samples: Optional[list],
                student_recorder: ModuleOutputRecorder) -> Dict[str, Logits]:
        """``'logits'`` and the recorded modules' outputs, float32.

        Args:
            inputs: The student-normalized batch, (B, 3, H, W).
            data_samples: The batch's data samples.
            student_recorder: The student's recorded step (a two-stage teacher scores the
                student's sampled RoIs).
        """
        with self.recorder:
            outputs = {LOGITS: self.logits(inputs, data_samples, student_recorder)}
        outputs.update(to_float32(self.recorder.outputs))
        return outputs

    def logits(self, inputs: torch.Tensor, data_samples: Optional[list],
               student_recorder: ModuleOutputRecorder):
        """The teacher's logits for the student-normalized batch (B, 3, H, W), in float32 (computed
        under bf16 autocast when ``teacher.bf16`` is set), the student's classes in its order when a
        class index map is set."""

        with torch.no_grad(), bf16_autocast(inputs.device.type, self.bf16):
            logits = self.adapter.teacher_logits(
                self.network, self.inputs(inputs, data_samples), student_recorder, data_samples)
        if self.class_index_map is not None:
            logits = logits[:, self.class_index_map]
        return to_float32(logits)

    def inputs(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> torch.Tensor:
        """The batch as the teacher takes it: re-normalized (its padding the teacher's own pad
        value, told apart by the samples' ``img_shape``), resized to the input size a classifier
        teacher's backbone was built for (bilinear), in channels-last memory format when
        ``teacher.channels_last`` is set.

        Shape (B, 3, H, W), or (B, 3, H_t, W_t) resized.
        """
        inputs = resized_to(self.renormalizer(inputs, data_samples), self.input_size)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs


class CachedTeacher(nn.Module):
    """A live teacher's logits served from a per-sample cache: computed only for the samples the
    cache lacks (see :class:`~mmkd_plugins.engine.TeacherCacheHook`, which checks that the pipeline
    makes a sample's key decide its teacher input).

    Args:
        live: The live teacher; its outputs must depend on each sample alone and be the logits
            only.
        max_bytes: The cache's bound in bytes (None: no bound).
        share_across_ranks: Under DDP, every rank also stores the logits the other ranks
            computed (gathered each step), so that a sample the sampler gives to another rank
            in a later epoch is cached there too.
    """

    outputs_per_sample = True

    def __init__(self, live: LiveTeacher, max_bytes: Optional[int] = None,
                 share_across_ranks: bool = True) -> None:
        super().__init__()
        self.live = live
        self.cache = TeacherOutputCache(max_bytes)
        self.share_across_ranks = share_across_ranks

    @classmethod
    def in_front_of(cls, source: TeacherSource, compared: Mapping[str, Tuple[str, str]],
                    max_bytes: Optional[int] = None,
                    share_across_ranks: bool = True) -> 'CachedTeacher':
        """A new, empty cache in front of ``source``'s live teacher (a cached source gets a new
        cache).

        Args:
            source: A live or cached teacher.
            compared: Loss name -> the (student, teacher) outputs the loss compares.
            max_bytes: The cache's bound in bytes (None: no bound).
            share_across_ranks: See the class's argument.

        Raises:
            ValueError: a soft-label store, teacher logits that are not per sample (two-stage
                detectors score the student's RoIs of each step), or a loss that compares
                named module outputs.
        """
        if isinstance(source, CachedTeacher):
            source = source.live
        if not isinstance(source, LiveTeacher):
            raise ValueError('the teacher cache and a soft-label store (model.soft_labels) '
                             'exclude each other: the store already removes the teacher')
        if not source.outputs_per_sample:
            raise ValueError('the teacher cache needs teacher logits that depend on each sample '
                             f'alone; a {source.adapter.task} teacher scores the student\'s '
                             'RoIs of each step')
        named = [name for name, pair in compared.items() if tuple(pair) != (LOGITS, LOGITS)]
        if named:
            raise ValueError(f'the teacher cache holds logits only; model.distill_losses.'
                             f'{named[0]} compares named module outputs')
        return cls(source, max_bytes, share_across_ranks)

    @property
    def network(self) -> BaseModel:
        """The live teacher's network."""
        return self.live.network

    def outputs(self, inputs: torch.Tensor, data_samples: list,
                student_recorder: ModuleOutputRecorder) -> Dict[str, Logits]:
        """``'logits'`` of the batch: computed for the samples the cache lacks, stored (with the
        other ranks' new ones when shared), and joined with the cached ones in batch order."""
        keys = [sample_key(sample) for sample in data_samples]
        missing = self.cache.missing(keys)
        computed = {}
        if missing:
            subset = inputs[torch.tensor(missing, device=inputs.device)]
            computed = dict(zip(missing, split_per_sample(self.live.logits(
                subset, [data_samples[index] for index in missing], student_recorder),
                len(missing))))
        new_entries = [(keys[index], computed[index]) for index in missing]
        if self.share_across_ranks and get_world_size() > 1:  # a collective: every rank
            new_entries = [entry for rank_entries in all_gather_object(
                [(key, to_device(sample, 'cpu')) for key, sample in new_entries])
                           for entry in rank_entries]
        for key, sample in new_entries:
            self.cache.store_sample(key, sample)
        return {LOGITS: self.cache.batch(keys, computed, inputs.device)}
