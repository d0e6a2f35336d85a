"""Atomic file writes, and an mmengine file backend that writes checkpoints atomically.

mmengine serializes a checkpoint into memory and then writes the bytes straight over the target
file: a process killed during that write leaves a torn ``epoch_N.pth`` (or ``last_checkpoint``).
Here every local write goes to a temporary file in the same folder that is then renamed over the
target, so the target is always either the old complete file or the new complete one.
"""
import io
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Any, Union

import torch
from mmengine.fileio import LocalBackend, register_backend


def atomic_write_bytes(path: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', dir=folder)
    try:
        with os.fdopen(handle, 'wb') as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_path, path)
    finally:
        if osp.exists(tmp_path):
            os.remove(tmp_path)


def atomic_torch_save(obj: Any, path: Union[str, Path]) -> None:
    """``torch.save`` that never leaves a partly written ``path``."""
    with io.BytesIO() as buffer:
        torch.save(obj, buffer)
        atomic_write_bytes(path, buffer.getvalue())


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put`` and ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write bytes to ``filepath`` atomically."""
        atomic_write_bytes(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically."""
        atomic_write_bytes(filepath, obj.encode(encoding))


def register_atomic_local_backend() -> None:
    """Make mmengine (checkpoints, ``last_checkpoint``) write local files atomically."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
