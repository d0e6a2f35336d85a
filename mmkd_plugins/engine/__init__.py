"""Training-loop components: hooks, and launching on CPU-only machines."""
from .cpu_distributed import setup_cpu_distributed, shutdown_distributed
from .hooks import (AtomicCheckpointHook, EpochScheduleCheckHook, ExportStudentHook,
                    RandomStateHook, StopOnNonFiniteLossHook, TeacherCacheHook)
from .resumed_seed import seed_of_resumed_run

__all__ = [
    'setup_cpu_distributed', 'shutdown_distributed', 'seed_of_resumed_run',
    'AtomicCheckpointHook', 'EpochScheduleCheckHook', 'ExportStudentHook',
    'StopOnNonFiniteLossHook', 'RandomStateHook', 'TeacherCacheHook'
]
