"""Task adapters: where each task's models keep the outputs that distillation compares."""
from mmengine.model import BaseModel

from .classifier_adapter import ClassifierAdapter

TASK_ADAPTERS = [ClassifierAdapter]


def adapter_for(student: BaseModel) -> type:
    """The adapter class for ``student``'s task.

    Raises:
        TypeError: no adapter supports this kind of model.
    """
    for adapter in TASK_ADAPTERS:
        if adapter.supports(student):
            return adapter
    supported = ', '.join(adapter.task for adapter in TASK_ADAPTERS)
    raise TypeError(f'model.student: distillation of a {type(student).__name__} is not '
                    f'supported (supported tasks: {supported})')


__all__ = ['ClassifierAdapter', 'TASK_ADAPTERS', 'adapter_for']
