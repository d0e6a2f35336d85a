"""Training-loop components: hooks, and launching on CPU-only machines."""

from .cpu_distributed import setup_cpu_distributed, shutdown_distributed
from .distillation_runner import DistillationRunner
from .hooks import (AtomicCheckpointHook, EpochScheduleCheckHook, ExportStudentHook,
                    RandomStateHook, StopOnNonFiniteLossHook, TeacherCacheHook)
from .resumed_seed import seed_of_resumed_run
from .student_optim_constructor import (StudentOptimWrapperConstructor,
                                        run_optim_constructor_on_student)

__all__ = [
    'DistillationRunner', 'setup_cpu_distributed', 'shutdown_distributed', 'seed_of_resumed_run',
    'StudentOptimWrapperConstructor', 'run_optim_constructor_on_student',
    'AtomicCheckpointHook', 'EpochScheduleCheckHook', 'ExportStudentHook',
    'StopOnNonFiniteLossHook', 'RandomStateHook', 'TeacherCacheHook'
]
