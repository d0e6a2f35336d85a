"""Checkpoint safety (weights-only loading) and student-only export."""
from .safe_loading import (SAFE_GLOBALS, UnsafeCheckpointError, register_weights_only_loaders,
                           safe_torch_load)
from .student_export import (atomic_torch_save, export_student_checkpoint,
                             extract_student_state_dict)

__all__ = [
    'SAFE_GLOBALS', 'UnsafeCheckpointError', 'register_weights_only_loaders', 'safe_torch_load',
    'atomic_torch_save', 'export_student_checkpoint', 'extract_student_state_dict'
]
