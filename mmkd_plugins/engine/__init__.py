"""Training-loop components: hooks, and launching on CPU-only machines."""
from .cpu_distributed import setup_cpu_distributed, shutdown_distributed
from .hooks import (EpochScheduleCheckHook, ExportStudentHook, RandomStateHook,
                    StopOnNonFiniteLossHook, TeacherCacheHook)

__all__ = [
    'setup_cpu_distributed', 'shutdown_distributed', 'EpochScheduleCheckHook',
    'ExportStudentHook', 'StopOnNonFiniteLossHook', 'RandomStateHook', 'TeacherCacheHook'
]
