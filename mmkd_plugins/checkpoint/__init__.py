"""Checkpoint safety: weights-only loading, atomic writes, student-only export."""

from .atomic_files import (AtomicLocalBackend, atomic_torch_save, atomic_write_bytes,
                           register_atomic_local_backend)
from .model_zoo_download import CheckpointDownloadError, CheckpointHashError, cached_download
from .safe_loading import (SAFE_GLOBALS, UnsafeCheckpointError, load_checkpoint_weights_only,
                           register_weights_only_loaders, safe_torch_load)
from .student_export import export_student_checkpoint, extract_student_state_dict

__all__ = [
    'AtomicLocalBackend', 'atomic_torch_save', 'atomic_write_bytes',
    'register_atomic_local_backend', 'CheckpointDownloadError', 'CheckpointHashError',
    'cached_download', 'SAFE_GLOBALS', 'UnsafeCheckpointError', 'load_checkpoint_weights_only',
    'register_weights_only_loaders', 'safe_torch_load', 'export_student_checkpoint',
    'extract_student_state_dict'
]
