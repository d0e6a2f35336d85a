"""Atomic file writes, and an mmengine file backend that writes checkpoints atomically.

mmengine serializes a checkpoint into memory and then writes the bytes straight over the target
file: a process killed during that write leaves a torn ``epoch_N.pth``. Here every local write
through mmengine's file backend goes to a temporary file in the same folder that is then renamed
over the target, so the target is always either the old complete file or the new complete one.
(mmengine writes ``last_checkpoint`` with a plain ``open``; see
:class:`~mmkd_plugins.engine.AtomicCheckpointHook`.)
"""

import io
import os
import os.path as osp
import secrets
from pathlib import Path
from typing import Any, Tuple, Union

import torch
from mmengine.fileio import LocalBackend, register_backend


def _create_temporary_file(folder: str, name: str) -> Tuple[int, str]:
    """A new file ``.<name>.<random>`` in ``folder``, created with mode 0o666 less the umask (as
    ``open(path, 'w')`` would create the target; ``tempfile.mkstemp`` makes 0o600 files that other
    users of a shared machine cannot read)."""
    while True:
        tmp_path = osp.join(folder, f'.{name}.{secrets.token_hex(6)}')
        try:
            return os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp_path
        except FileExistsError:
            continue


def atomic_write_bytes(path: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename; the file's mode follows the
    umask."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = _create_temporary_file(folder, osp.basename(path))
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
