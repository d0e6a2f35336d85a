"""Checkpoint loading with ``torch.load(weights_only=True)`` and an exact allow-list, for every
scheme mmengine knows.

mmengine 0.10.7 calls ``torch.load`` without ``weights_only``: on torch >= 2.6 (which defaults to
``weights_only=True``) its own checkpoints then fail to load (``Unsupported global:
mmengine.logging.history_buffer.HistoryBuffer``); its http(s), ``torchvision://``,
``open-mmlab://`` and ``mmcls://`` loaders go through ``torch.hub.load_state_dict_from_url``,
which unpickles anything; ``pavi://`` and ``s3://``/``petrel://`` call a bare ``torch.load``.
This module has, for each of those schemes, a loader that reads the same file and always
unpickles with ``weights_only=True``, allowing only the plain-data classes that mmengine
checkpoints hold; a file whose pickle would call anything else is refused with
:class:`UnsafeCheckpointError`. :func:`load_checkpoint_weights_only` uses them directly;
:func:`register_weights_only_loaders` (called by the distillation runner, not on import) puts
them in mmengine's ``CheckpointLoader`` for everything the runner loads.
"""

import io
import os.path as osp
import pickle
import re
from tempfile import TemporaryDirectory
from typing import Any, BinaryIO, Callable, List, Optional, Union

import numpy as np
import torch
from mmengine.fileio import get_file_backend
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .model_zoo_download import cached_download


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle needs a global outside the allow-list."""


def _numpy_globals() -> List[Callable]:
    """NumPy's array/scalar reconstruction functions and dtype classes, as pickled by numpy 1/2."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]  # numpy 1
    dtype_classes = [type(np.dtype(name)) for name in (
        'bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64',
        'float16', 'float32', 'float64')]
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


# Registered by every HistoryBuffer's constructor; custom ones are in `_statistics_methods`.
HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_statistic(owner: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling.

    A pickled :class:`HistoryBuffer` refers to its statistics methods as ``getattr(HistoryBuffer,
    'mean')``. A general ``getattr`` would let a crafted pickle reach any attribute (and from there
    any code), so only these exact look-ups are allowed.
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


def safe_torch_load(source: Union[str, BinaryIO], map_location: Optional[Any] = None,
                    name: Optional[str] = None, mmap: bool = False) -> Any:
    """``torch.load(source, weights_only=True)`` allowing exactly :data:`SAFE_GLOBALS`.

    Args:
        source: Local file, or a binary file object (a checkpoint read from object storage).
        map_location: As in :func:`torch.load`.
        name: What to call ``source`` in messages. Defaults to its path.
        mmap: Map the file's tensors instead of reading them (a local file; for reading its
            metadata cheaply). Defaults to False.

    Returns:
        The unpickled object (usually a dict with ``state_dict`` and ``meta``).

    Raises:
        FileNotFoundError: ``source`` is a path and not a file.
        UnsafeCheckpointError: the pickle references a global outside the allow-list.
    """
    if isinstance(source, str):
        source = osp.expanduser(source)
        if not osp.isfile(source):
            raise FileNotFoundError(f'checkpoint file not found: {source}')
    name = name or str(source)
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        try:
            return torch.load(source, map_location=map_location, weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as error:
            raise UnsafeCheckpointError(
                f'refused to load {name}: its pickle references objects outside the '
                'allow-list of plain tensor/numpy/mmengine data, so unpickling it could run '
                f'code. {_unsupported_global(error)}') from error


def _unsupported_global(error: Exception) -> str:
    """The line of torch's message that names the refused global, if there is one."""
    for line in str(error).splitlines():
        if any(marker in line for marker in ('Unsupported global', 'not allowed', 'but got')):
            return line.strip()
    return str(error).splitlines()[0]


def _model_url(table: dict, name: str, scheme: str) -> str:
    """The URL of ``name`` in one of mmengine's model tables, or a clear error."""
    if name not in table:
        raise KeyError(f'{scheme}{name}: no such model in mmengine\'s {scheme} table')
    return table[name]


def load_from_local_weights_only(filename: str, map_location: Optional[Any] = None) -> Any:
    """Local paths (replaces mmengine's ``load_from_local``)."""
    return safe_torch_load(filename, map_location)


def load_from_http_weights_only(filename: str, map_location: Optional[Any] = None) -> Any:
    """HTTP(S) URLs, downloaded once per node into torch hub's cache and hash-verified (replaces
    mmengine's ``load_from_http``)."""
    return safe_torch_load(cached_download(filename), map_location, name=filename)


def load_from_torchvision_weights_only(filename: str, map_location: Optional[Any] = None) -> Any:
    """``torchvision://NAME`` and the deprecated ``modelzoo://NAME`` (torchvision's weights)."""
    name = filename.split('://', 1)[1]
    url = _model_url(mmengine_checkpoint.get_torchvision_models(), name, 'torchvision://')
    return load_from_http_weights_only(url, map_location)


def load_from_openmmlab_weights_only(filename: str, map_location: Optional[Any] = None) -> Any:
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: a URL, or a file under mmengine's home."""
    name = filename.split('://', 1)[1]
    name = mmengine_checkpoint.get_deprecated_model_names().get(name, name)
    url = _model_url(mmengine_checkpoint.get_external_models(), name, 'open-mmlab://')
    if url.startswith(('http://', 'https://')):
        return load_from_http_weights_only(url, map_location)
    return safe_torch_load(osp.join(mmengine_checkpoint._get_mmengine_home(), url), map_location)


def load_from_mmcls_weights_only(filename: str, map_location: Optional[Any] = None) -> Any:
    """``mmcls://NAME``: mmcls model-zoo weights, with mmengine's key conversion."""
    url = _model_url(mmengine_checkpoint.get_mmcls_models(), filename[len('mmcls://'):],
                     'mmcls://')
    checkpoint = load_from_http_weights_only(url, map_location)
    return mmengine_checkpoint._process_mmcls_checkpoint(checkpoint)


def load_from_pavi_weights_only(filename: str, map_location: Optional[Any] = None) -> Any:
    """``pavi://PATH``: downloaded from pavi's model cloud into a temporary folder."""
    try:
        from pavi import modelcloud
    except ImportError as error:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.') from error
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as folder:
        downloaded = osp.join(folder, model.name)
        model.download(downloaded)
        return safe_torch_load(downloaded, map_location, name=filename)


def load_from_ceph_weights_only(filename: str, map_location: Optional[Any] = None,
                                backend: str = 'petrel') -> Any:
    """``s3://`` and ``petrel://`` paths, read through mmengine's petrel file backend."""
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return safe_torch_load(buffer, map_location, name=filename)


# Every scheme mmengine 0.10.7 registers, with the prefixes it registers them under.
WEIGHTS_ONLY_LOADERS = {
    '': load_from_local_weights_only,
    ('http://', 'https://'): load_from_http_weights_only,
    ('modelzoo://', 'torchvision://'): load_from_torchvision_weights_only,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab_weights_only,
    'mmcls://': load_from_mmcls_weights_only,
    'pavi://': load_from_pavi_weights_only,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph_weights_only,
}


# Each prefix pattern with its loader, longest first: the order in which mmengine tries its own.
_LOADERS_BY_PREFIX = sorted(
    ((prefix, loader) for keys, loader in WEIGHTS_ONLY_LOADERS.items()
     for prefix in ((keys, ) if isinstance(keys, str) else keys)),
    key=lambda item: len(item[0]), reverse=True)


def _loader_of(filename: str) -> Callable:
    """The weights-only loader for ``filename``'s scheme, matched as mmengine matches its own:

    the longest matching prefix pattern wins, the local loader (prefix ``''``) matches all.
    """
    for prefix, loader in _LOADERS_BY_PREFIX:
        if re.match(prefix, filename) is not None:
            return loader
    raise AssertionError('the local loader matches every path')  # pragma: no cover


def load_checkpoint_weights_only(filename: str, map_location: Optional[Any] = None) -> Any:
    """Load a checkpoint of any scheme mmengine knows (local path, http(s), ``torchvision://``,
    ``open-mmlab://``, ``mmcls://``, ``pavi://``, ``s3://``) weights-only, without changing
    mmengine's own loaders.

    Args:
        filename: The path or URL, as for mmengine's ``CheckpointLoader.load_checkpoint``.
        map_location: As in :func:`torch.load`.

    Returns:
        The unpickled checkpoint.

    Raises:
        UnsafeCheckpointError: the pickle references a global outside the allow-list.
    """
    return _loader_of(filename)(filename, map_location)


def register_weights_only_loaders() -> None:
    """Make mmengine load checkpoints of every scheme through :func:`safe_torch_load`.

    Changes mmengine's process-wide ``CheckpointLoader``; the
    :class:`~mmkd_plugins.engine.DistillationRunner` calls it when it is built. Idempotent.
    """
    for prefixes, loader in WEIGHTS_ONLY_LOADERS.items():
        CheckpointLoader.register_scheme(prefixes, loader, force=True)
