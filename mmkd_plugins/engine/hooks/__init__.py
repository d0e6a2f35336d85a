"""Hooks of mmkd_plugins."""

from .atomic_checkpoint_hook import AtomicCheckpointHook
from .epoch_schedule_check_hook import EpochScheduleCheckHook
from .export_student_hook import ExportStudentHook
from .non_finite_loss_hook import StopOnNonFiniteLossHook
from .random_state_hook import RandomStateHook
from .teacher_cache_hook import TeacherCacheHook

__all__ = [
    'AtomicCheckpointHook', 'EpochScheduleCheckHook', 'ExportStudentHook',
    'StopOnNonFiniteLossHook', 'RandomStateHook', 'TeacherCacheHook'
]
