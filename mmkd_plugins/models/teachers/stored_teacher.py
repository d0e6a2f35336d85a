"""The teacher outputs of a soft-label store: the teacher's logits of each sample's replayed view,
read from the store; the teacher network is never built."""

from typing import Dict, Mapping, Protocol, Tuple

import numpy as np
import torch
from mmengine.model import BaseModel
from torch import nn

from mmkd_plugins.soft_labels import (VIEW_KEY, SoftLabelStore, logits_from_soft_labels,
                                      teacher_differences, teacher_identity)
from ..module_output_recorder import ModuleOutputRecorder
from .teacher_sources import LOGITS

SOFT_LABEL_KEYS = ('store', 'allow_partial_intra_class')


class StoreAdapter(Protocol):
    """What a stored teacher uses of the student's task adapter (a
    :class:`~mmkd_plugins.models.task_adapters.TaskAdapter`, which imports this package)."""

    task: str
    image_classification: bool


class StoredTeacher(nn.Module):
    """The teacher's logits from a store (``model.soft_labels``), checked against the distiller's
    config at build time. The teacher network is never built.

    Args:
        soft_labels: ``dict(store=<folder>, allow_partial_intra_class=False)``; with
            ``allow_partial_intra_class=True`` DIST's intra-class term is allowed from a store
            of fewer than all classes (see :meth:`check_losses`).
        teacher: The distiller's ``teacher`` config (compared with the store's teacher).
        student: The student (a classifier of the store's class count).
        adapter: The student's task adapter (a
            :class:`~mmkd_plugins.models.task_adapters.TaskAdapter`).
        field: Where ``soft_labels`` sits in the config, for errors.

    Raises:
        ValueError: unknown keys, a student that is not a classifier or mixes its batches
            (Mixup/CutMix), a store made for another teacher (naming what differs) or another
            class count.
    """

    network = None
    outputs_per_sample = True

    def __init__(self, soft_labels: dict, teacher: dict, student: BaseModel,
                 adapter: StoreAdapter, field: str = 'model.soft_labels') -> None:
        super().__init__()
        if not adapter.image_classification:
            raise ValueError(f'{field}: a soft-label store serves classifiers; for a '
                             f'{adapter.task} student, distill from the live teacher '
                             '(TeacherCacheHook caches deterministic pipelines)')
        if getattr(student.data_preprocessor, 'batch_augments', None) is not None:
            raise ValueError(
                f'{field}: the data preprocessor\'s batch_augments (Mixup/CutMix) mix images, '
                'and the teacher\'s output on a mixed image is not the mix of its stored '
                'outputs; remove the batch augments or distill from the live teacher')
        unknown = set(soft_labels) - set(SOFT_LABEL_KEYS)
        if unknown or 'store' not in soft_labels:
            raise ValueError(f'{field}: expected dict(store=<folder made by '
                             'tools/make_soft_labels.py>, allow_partial_intra_class=False), '
                             f'got keys {sorted(soft_labels)}')
        self.field = field
        self.allow_partial_intra_class = bool(soft_labels.get('allow_partial_intra_class',
                                                              False))
        self.store = SoftLabelStore.open(soft_labels['store'], f'{field}.store')
        header = self.store.header
        differences = teacher_differences(header['teacher'], teacher_identity(teacher))
        if differences:
            raise ValueError(f'{field}.store: {self.store.folder} holds the soft labels of '
                             'another teacher than model.teacher (' + '; '.join(differences)
                             + ')')
        self.tau, self.num_classes = float(header['tau']), int(header['num_classes'])
        self.top_k = int(header['top_k'])
        student_classes = getattr(getattr(student, 'head', None), 'num_classes', None)
        if student_classes != self.num_classes:
            raise ValueError(f'{field}.store: the store holds {self.num_classes}-class '
                             f'soft labels; the student has {student_classes} classes '
                             '(model.student.head.num_classes)')

    def outputs(self, inputs: torch.Tensor, data_samples: list,
                student_recorder: ModuleOutputRecorder) -> Dict[str, torch.Tensor]:
        """``'logits'``: the stored logits of each sample's view, (B, C) float32 on the batch's
        device."""
        return {LOGITS: self.logits(data_samples, inputs.device)}

    def check_losses(self, losses: nn.ModuleDict, compared: Mapping[str, Tuple[str, str]],
                     student: BaseModel, losses_field: str) -> None:
        """Each loss must compare logits with a softmax, at the store's temperature or a learned
        global one (CTKD); DIST's intra-class term needs every class stored.

        The intra-class term correlates each class's column over the batch; in a store of the
        top k < C classes, a sample's column of a class outside its top k is made up (the equal
        share of the left-over mass), so most columns are, and the term's gradient is not the
        live teacher's. It is refused unless ``allow_partial_intra_class=True``.

        Args:
            losses: The distillation losses by name.
            compared: Name -> the (student, teacher) outputs the loss compares.
            student: The student.
            losses_field: Where the losses sit in the config.
        """
        for name, loss in losses.items():
            field = f'{losses_field}.{name}'
            if tuple(compared[name]) != (LOGITS, LOGITS):
                raise ValueError(f'{field}: a soft-label store holds the teacher\'s class '
                                 'probabilities only; this loss compares named module outputs')
            if getattr(loss, 'activation', 'softmax') != 'softmax':
                raise ValueError(f"{field}: a soft-label store holds softmax probabilities; "
                                 f"activation={loss.activation!r} needs the teacher's logits")
            if (getattr(loss, 'gamma', 0) and self.top_k < self.num_classes
                    and not self.allow_partial_intra_class):
                raise ValueError(
                    f'{field}.gamma: DIST\'s intra-class term correlates each class over the '
                    f'batch, and the store {self.store.folder} keeps top_k={self.top_k} of '
                    f'{self.num_classes} classes per view, so the other classes\' columns are '
                    'made up (an equal share of the left-over probability) and its gradient is '
                    "not the live teacher's; make the store with --top-k "
                    f'{self.num_classes}, set gamma=0, or accept the approximation with '
                    f'{self.field}.allow_partial_intra_class=True')
            temperature = getattr(loss, 'temperature', None)
            if temperature is not None:
                if getattr(temperature, 'mode', 'global') != 'global':
                    raise ValueError(f'{field}.tau: an instance-wise temperature reads the '
                                     "teacher's logit values, which a store does not hold; use "
                                     "CurriculumTemperature(mode='global')")
                continue
            tau = getattr(loss, 'tau', None)
            if tau is not None and float(tau) != self.tau:
                raise ValueError(f'{field}.tau: the store {self.store.folder} holds '
                                 f'probabilities at tau={self.tau}, this loss softens at '
                                 f'tau={tau}; make the store with --tau {tau} or set the loss '
                                 'to the store\'s')

    def logits(self, data_samples: list, device: torch.device) -> torch.Tensor:
        """The teacher's logits of the batch's replayed views, rebuilt from the stored top-k (see
        :func:`~mmkd_plugins.soft_labels.stored_logits.logits_from_soft_labels`).

        Args:
            data_samples: The batch's samples, each with ``sample_idx`` and
                ``soft_label_view`` in its metainfo.
            device: Where the logits go.

        Returns:
            (B, C) float32.

        Raises:
            KeyError: a sample without its view index: the pipeline does not replay the store.
        """
        if any(VIEW_KEY not in sample.metainfo for sample in data_samples):
            raise KeyError(
                f'{self.field}: the batch\'s samples carry no {VIEW_KEY!r}: the training '
                'pipeline does not replay the store\'s views. The runner of the distillation '
                "configs sets it up (runner_type='mmkd_plugins.DistillationRunner'); with "
                'another runner call mmkd_plugins.soft_labels.use_soft_label_store(cfg) '
                'before building it')
        samples = np.array([int(sample.metainfo['sample_idx']) for sample in data_samples])
        views = np.array([int(sample.metainfo[VIEW_KEY]) for sample in data_samples])
        probabilities, classes = self.store.soft_labels(samples, views)
        return logits_from_soft_labels(torch.from_numpy(probabilities).to(device),
                                       torch.from_numpy(classes).to(device),
                                       self.num_classes, self.tau)
