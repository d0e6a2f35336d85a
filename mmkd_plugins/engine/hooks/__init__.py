"""Hooks of mmkd_plugins."""
from .export_student_hook import ExportStudentHook
from .non_finite_loss_hook import StopOnNonFiniteLossHook
from .random_state_hook import RandomStateHook
from .teacher_cache_hook import TeacherCacheHook

__all__ = ['ExportStudentHook', 'StopOnNonFiniteLossHook', 'RandomStateHook', 'TeacherCacheHook']
