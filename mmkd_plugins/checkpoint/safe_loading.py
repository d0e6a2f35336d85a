"""Checkpoint loading with ``torch.load(weights_only=True)`` and an exact allow-list.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``: on torch >= 2.6 (which defaults to
``weights_only=True``) its own checkpoints then fail to load (``Unsupported global:
mmengine.logging.history_buffer.HistoryBuffer``), and its URL loader goes through
``torch.hub.load_state_dict_from_url``, which unpickles anything. This module registers two
loaders in mmengine's ``CheckpointLoader`` (local paths and http(s) URLs) that always unpickle
with ``weights_only=True`` and allow only the plain-data classes that mmengine checkpoints hold.
A file whose pickle would call anything else is refused with :class:`UnsafeCheckpointError`.
"""
import os
import os.path as osp
import pickle
from typing import Any, Callable, List, Optional
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle needs a global outside the allow-list."""


def _numpy_globals() -> List[Callable]:
    """numpy's array/scalar reconstruction functions and dtype classes, as pickled by numpy 1/2."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(name)) for name in (
        'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
        'float16', 'float32', 'float64')]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


# Registered by every HistoryBuffer's constructor; custom ones are in `_statistics_methods`.
HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_statistic(owner: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling.

    A pickled :class:`HistoryBuffer` refers to its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. A general ``getattr`` would let a crafted pickle reach
    any attribute (and from there any code), so only these exact look-ups are allowed.
    """
    allowed = HISTORY_BUFFER_STATISTICS.union(HistoryBuffer._statistics_methods)
    if owner is not HistoryBuffer or name not in allowed:
        raise pickle.UnpicklingError(
            f'getattr({getattr(owner, "__name__", type(owner).__name__)}, {name!r}) is not '
            'allowed in a checkpoint')
    return getattr(owner, name)


SAFE_GLOBALS: List[Any] = [
    HistoryBuffer, (_history_buffer_statistic, 'builtins.getattr'), *_numpy_globals()
]


def safe_torch_load(path: str, map_location: Optional[Any] = None) -> Any:
    """``torch.load(path, weights_only=True)`` allowing exactly :data:`SAFE_GLOBALS`.

    Args:
        path: Local file.
        map_location: As in :func:`torch.load`.

    Returns:
        The unpickled object (usually a dict with ``state_dict`` and ``meta``).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        UnsafeCheckpointError: the pickle references a global outside the allow-list.
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as error:
            raise UnsafeCheckpointError(
                f'refused to load {path}: its pickle references objects outside the '
                'allow-list of plain tensor/numpy/mmengine data, so unpickling it could run '
                f'code. {_unsupported_global(error)}') from error


def _unsupported_global(error: Exception) -> str:
    """The line of torch's message that names the refused global, if there is one."""
    for line in str(error).splitlines():
        if any(marker in line for marker in ('Unsupported global', 'not allowed', 'but got')):
            return line.strip()
    return str(error).splitlines()[0]


def cache_path_of(url: str) -> str:
    """Where torch hub keeps the download of ``url``: ``$TORCH_HOME/hub/checkpoints/<basename>``."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(url).path))


def cached_download(url: str) -> str:
    """Download ``url`` once into torch hub's cache and return the local path.

    The file is ``$TORCH_HOME/hub/checkpoints/<basename of the url>``, the place
    ``torch.hub.load_state_dict_from_url`` uses, so files already there are reused offline.
    Under distributed training, rank 0 downloads while the others wait.
    """
    local_path = cache_path_of(url)
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(local_path):
        os.makedirs(osp.dirname(local_path), exist_ok=True)
        torch.hub.download_url_to_file(url, local_path, progress=False)
    if world_size > 1:
        barrier()
    return local_path


def load_from_local_weights_only(filename: str, map_location: Optional[Any] = None) -> Any:
    """mmengine checkpoint loader for local paths (replaces mmengine's ``load_from_local``)."""
    return safe_torch_load(filename, map_location)


def load_from_http_weights_only(filename: str, map_location: Optional[Any] = None) -> Any:
    """mmengine checkpoint loader for http(s) URLs (replaces mmengine's ``load_from_http``)."""
    return safe_torch_load(cached_download(filename), map_location)


def register_weights_only_loaders() -> None:
    """Make mmengine load local and http(s) checkpoints through :func:`safe_torch_load`."""
    CheckpointLoader.register_scheme('', load_from_local_weights_only, force=True)
    CheckpointLoader.register_scheme(('http://', 'https://'), load_from_http_weights_only,
                                     force=True)
