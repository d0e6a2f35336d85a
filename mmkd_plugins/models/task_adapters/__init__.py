"""Task adapters: where each task's models keep the outputs that distillation compares.

Every adapter is a class of static methods with the interface of :class:`TaskAdapter` and of
:class:`HybridTaskAdapter`, see :mod:`.protocol`.

An adapter says which student modules to record during the student's stock ``loss()``, how to read
the student's logits from that record, and how to compute the matching teacher logits with the least
work (no loss, no assignment, no post-processing). Adapters also run a model's neck and head on
given backbone outputs, for the hybrid networks of block-wise distillation (``head_forward``,
``head_logits``, ``head_task_losses``), with what ``record_student_step`` kept from the student's
step (a two-stage student's sampled RoIs and their targets). Adapters with
``teacher_logits_per_sample`` give teacher logits whose rows belong to one sample each, in batch
order, so that they can be cached per sample; with ``teacher_inputs_resizable`` the batch may be
resized to the input size a teacher was built for.
"""

from typing import List

from mmengine.model import BaseModel

from .classifier_adapter import ClassifierAdapter
from .dense_head_adapter import DenseHeadAdapter, flatten_levels
from .detr_adapter import DetrAdapter, last_layers
from .protocol import HybridTaskAdapter, TaskAdapter
from .roi_head_adapter import RoIHeadAdapter
from .two_classifier_heads import (class_and_distillation_logits, two_classifier_layout,
                                   two_classifier_loss)

TASK_ADAPTERS: List[TaskAdapter] = [ClassifierAdapter, DenseHeadAdapter, RoIHeadAdapter,
                                     DetrAdapter]


def adapter_for(student: BaseModel) -> TaskAdapter:
    """The adapter class for ``student``'s task.

    Raises:
        TypeError: no adapter supports this kind of model.
    """
    for adapter in TASK_ADAPTERS:
        if adapter.supports(student):
            return adapter
    supported = '; '.join(adapter.task for adapter in TASK_ADAPTERS)
    raise TypeError(f'model.student: distillation of a {type(student).__name__} is not '
                    f'supported (supported: {supported})')


__all__ = [
    'ClassifierAdapter', 'DenseHeadAdapter', 'DetrAdapter', 'RoIHeadAdapter', 'TASK_ADAPTERS',
    'adapter_for',
    'TaskAdapter', 'HybridTaskAdapter',
    'flatten_levels', 'last_layers', 'class_and_distillation_logits', 'two_classifier_layout',
    'two_classifier_loss'
]
