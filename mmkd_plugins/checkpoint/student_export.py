"""Student-only checkpoints: what a distillation run hands to the stock mmpretrain/mmdet tools."""

import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, Optional

import torch

from .atomic_files import atomic_torch_save

STUDENT_PREFIX = 'student.'


def extract_student_state_dict(
        state_dict: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Keep the ``student.*`` entries of a distiller's state dict, without the prefix.

    Args:
        state_dict: A :class:`~mmkd_plugins.models.Distiller` state dict (a checkpoint's
            ``state_dict``).

    Returns:
        The student's own state dict, loadable strictly into the stock student model.

    Raises:
        ValueError: no key starts with ``student.`` (not a distillation checkpoint).
    """
    student = OrderedDict((key[len(STUDENT_PREFIX):], value)
                          for key, value in state_dict.items()
                          if key.startswith(STUDENT_PREFIX))
    if not student:
        some_keys = ', '.join(list(state_dict)[:5])
        raise ValueError('not a distillation checkpoint: no key starts with '
                         f"'{STUDENT_PREFIX}' (first keys: {some_keys})")
    return student


def export_student_checkpoint(checkpoint: Dict[str, Any], out_path: str,
                              overwrite: bool = False,
                              source: Optional[str] = None) -> Dict[str, Any]:
    """Write a student-only checkpoint ``{'meta': ..., 'state_dict': ...}``.

    Args:
        checkpoint: A distillation checkpoint as loaded (``state_dict`` and ``meta``).
        out_path: File to write.
        overwrite: Replace an existing ``out_path``. Defaults to False.
        source: Where the checkpoint came from, recorded in ``meta``.

    Returns:
        The student-only checkpoint that was written.

    Raises:
        FileExistsError: ``out_path`` exists and ``overwrite`` is False.
    """
    if osp.exists(out_path) and not overwrite:
        raise FileExistsError(f'{out_path} exists; pass overwrite=True (--force) to replace it')
    meta = checkpoint.get('meta', {}) or {}
    student_meta = {key: meta[key] for key in ('dataset_meta', 'epoch', 'iter', 'seed',
                                                'mmengine_version') if key in meta}
    student_meta['exported_by'] = 'mmkd_plugins'
    if source is not None:
        student_meta['exported_from'] = source
    student_checkpoint = {
        'meta': student_meta,
        'state_dict': extract_student_state_dict(checkpoint['state_dict']),
    }
    atomic_torch_save(student_checkpoint, out_path)
    return student_checkpoint
