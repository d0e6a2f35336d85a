"""The soft-label store on disk: per training sample, K stored views, each with the teacher's
top-k probabilities; memory-mapped, written once (resumably, by any number of processes) and
read by any number of runs.

A store is a folder:

- ``header.json``: what the labels were made from and how (see :func:`header_differences`):
  the teacher (config, cfg_options, checkpoint and its SHA-256), the temperature, the number of
  samples N, views K, kept classes k and classes C, the replayed transforms (their configs, as
  in the training pipeline), the transforms left out (``approximated``), the seed of the views,
  and ``complete`` once every sample is written, with ``kept_mass`` (the stored top-k's share
  of the teacher's probability, see :func:`read_back`).
- ``probabilities.npy``: (N, K, k) float16, ``softmax(z_teacher / tau)`` of the k most probable
  classes of each view, in decreasing order.
- ``classes.npy``: (N, K, k) int16 (int32 for C > 32767), those classes.
- ``sample_ids.npy``: (N,) int64, each sample's identity (:func:`sample_identity` of its image
  path, or of its pixels for images held in memory), so that a store is never read for another
  dataset.
- ``done.npy``: (N,) uint8, 1 once a sample's K views are written (a stopped generation goes
  on from there).

Bytes per sample: ``K · k · (2 + 2) + 9`` (int16 classes), e.g. 4,009 for K = 100, k = 10:
5.1 GB for ImageNet-1k's 1,281,167 training images.
"""
import json
import os
import os.path as osp
import zlib
from typing import Any, Dict, List, Literal, Optional, Tuple

import numpy as np
from numpy.typing import DTypeLike

FORMAT_VERSION = 1
HEADER = 'header.json'
ARRAYS = ('probabilities', 'classes', 'sample_ids', 'done')
VIEW_KEY = 'soft_label_view'  # the metainfo key of a replayed view's index in a training batch
# header fields that must agree between a store and the run that reads or continues it
IDENTITY_FIELDS = ('format_version', 'teacher', 'tau', 'num_samples', 'views', 'top_k',
                   'num_classes', 'replayed_transforms', 'approximated', 'seed')


def sample_identity(results: dict) -> int:
    """A sample's identity in a store: the CRC-32 of its ``img_path``, or of its image's pixels when
    it has no file (``results['img']``, an array)."""
    if results.get('img_path'):
        return zlib.crc32(str(results['img_path']).encode())
    return zlib.crc32(np.ascontiguousarray(results['img']).tobytes())


def class_dtype(num_classes: int) -> np.dtype:
    """The smallest integer type that holds every class index."""
    return np.dtype(np.int16 if num_classes <= np.iinfo(np.int16).max else np.int32)


def bytes_per_sample(views: int, top_k: int, num_classes: int) -> int:
    """Bytes one training sample takes in a store."""
    return views * top_k * (2 + class_dtype(num_classes).itemsize) + 8 + 1


def store_header(teacher: Dict[str, Any], tau: float, num_samples: int, views: int,
                 top_k: int, num_classes: int, replayed_transforms: List[dict],
                 approximated: List[str], seed: int, **details: Any) -> Dict[str, Any]:
    """A store's header: the identity fields (see :data:`IDENTITY_FIELDS`) and any informational
    ``details`` (e.g. the dataset's config)."""
    return dict(format_version=FORMAT_VERSION, teacher=teacher, tau=tau,
                num_samples=num_samples, views=views, top_k=top_k, num_classes=num_classes,
                replayed_transforms=replayed_transforms, approximated=approximated, seed=seed,
                **details)


def header_differences(stored: Dict[str, Any], expected: Dict[str, Any]) -> List[str]:
    """The identity fields in which two headers differ, as ``'field: stored X, here Y'``."""
    return [f'{field}: the store has {stored.get(field)!r}, this run {expected.get(field)!r}'
            for field in IDENTITY_FIELDS
            if json.loads(json.dumps(stored.get(field))) != json.loads(
                json.dumps(expected.get(field)))]


class SoftLabelStore:
    """A store folder opened for reading or writing (see the module docstring).

    Use :meth:`create_or_continue` to write and :meth:`open` to read.

    Args:
        folder: The store's folder.
        header: Its header.
        writable: Open the arrays for writing.
    """

    def __init__(self, folder: str, header: Dict[str, Any], writable: bool) -> None:
        self.folder = folder
        self.header = header
        mode: Literal['r+', 'r'] = 'r+' if writable else 'r'
        self.arrays = {name: np.load(osp.join(folder, f'{name}.npy'), mmap_mode=mode)
                       for name in ARRAYS}

    def __deepcopy__(self, memo: dict) -> 'SoftLabelStore':
        """The store itself: a deep copy of a model that reads it (``EMAHook``'s averaged copy)
        shares its memory maps; a copy of a memory-mapped array would be an in-memory array holding
        the whole store."""
        return self

    @classmethod
    def open(cls, folder: str, field: str) -> 'SoftLabelStore':
        """Open a complete store for reading.

        Args:
            folder: The store's folder.
            field: Where the folder is named in the config, for errors.

        Raises:
            FileNotFoundError: no store in ``folder``.
            ValueError: another format version, or an incomplete store.
        """
        header = read_header(folder, field)
        if header.get('format_version') != FORMAT_VERSION:
            raise ValueError(f'{field}: {folder} is a store of format '
                             f'{header.get("format_version")}; this version reads '
                             f'{FORMAT_VERSION}: make it again with tools/make_soft_labels.py')
        store = cls(folder, header, writable=False)
        if not header.get('complete'):
            missing = int((store.arrays['done'] == 0).sum())
            raise ValueError(f'{field}: the store {folder} is incomplete ({missing} of '
                             f'{header["num_samples"]} samples not written); run '
                             'tools/make_soft_labels.py again with the same --out to finish it')
        return store

    @classmethod
    def create_or_continue(cls, folder: str, header: Dict[str, Any]) -> 'SoftLabelStore':
        """Create an empty store with ``header``, or open the one in ``folder`` to continue it when
        its header agrees; one process (rank 0) calls this, the others :meth:`attach`.

        Raises:
            ValueError: ``folder`` holds a store of another setting (naming what differs).
        """
        if osp.exists(osp.join(folder, HEADER)):
            return cls.attach(folder, header)
        os.makedirs(folder, exist_ok=True)
        shape = (header['num_samples'], header['views'], header['top_k'])
        dtypes: Dict[str, Tuple[Tuple[int, ...], DTypeLike]] = dict(
            probabilities=(shape, np.float16),
            classes=(shape, class_dtype(header['num_classes'])),
            sample_ids=((header['num_samples'], ), np.int64),
            done=((header['num_samples'], ), np.uint8))
        for name, (array_shape, dtype) in dtypes.items():
            array = np.lib.format.open_memmap(osp.join(folder, f'{name}.npy'), mode='w+',
                                              dtype=dtype, shape=array_shape)
            array.flush()
            del array
        write_header(folder, dict(header, complete=False))  # last: a folder with a header is whole
        return cls(folder, read_header(folder, 'the store'), writable=True)

    @classmethod
    def attach(cls, folder: str, header: Dict[str, Any]) -> 'SoftLabelStore':
        """Open an existing store for writing, checking that it was made with ``header``.

        Raises:
            ValueError: the stored header differs (naming the fields).
        """
        stored = read_header(folder, '--out')
        differences = header_differences(stored, header)
        if differences:
            raise ValueError(f'--out: {folder} holds a store of another setting ('
                             + '; '.join(differences) + '); choose another folder')
        return cls(folder, stored, writable=True)

    @property
    def num_samples(self) -> int:
        """N, the number of training samples."""
        return self.header['num_samples']

    def pending_samples(self, rank: int = 0, world_size: int = 1) -> List[int]:
        """Indices of this process's share (see :func:`shard`) that are not written yet."""
        done = self.arrays['done']
        return [index for index in shard(rank, world_size, self.num_samples)
                if not done[index]]

    def write_sample(self, index: int, identity: int, probabilities: np.ndarray,
                     classes: np.ndarray) -> None:
        """Write one sample's K views and mark it done.

        Args:
            index: The sample's index in the dataset.
            identity: Its :func:`sample_identity`.
            probabilities: (K, k) float16.
            classes: (K, k) class indices.
        """
        self.arrays['probabilities'][index] = probabilities
        self.arrays['classes'][index] = classes
        self.arrays['sample_ids'][index] = identity
        self.arrays['done'][index] = 1

    def flush(self) -> None:
        """Write the memory maps' changes to disk."""
        for array in self.arrays.values():
            array.flush()

    def mark_complete(self) -> np.ndarray:
        """Flush, read every row back (:func:`read_back`) and mark the lost ones not done; if every
        sample is then written, set ``complete`` and ``kept_mass`` in the header. Call it on a fresh
        opening of the store once every writing process has flushed and closed its own.

        Returns:
            The samples found lost (running the generation again writes them).
        """
        self.flush()
        lost, mass = read_back(self.arrays['probabilities'], self.arrays['sample_ids'],
                               self.arrays['done'])
        if len(lost):
            self.arrays['done'][lost] = 0
            self.flush()
        if bool(np.all(self.arrays['done'])):
            self.header = dict(self.header, complete=True, kept_mass=mass)
            write_header(self.folder, self.header)
        elif self.header.get('complete'):
            self.header = {key: value for key, value in self.header.items()
                           if key != 'kept_mass'}
            self.header['complete'] = False
            write_header(self.folder, self.header)
        return lost

    def soft_labels(self, samples: np.ndarray,
                    views: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The stored top-k of a batch.

        Args:
            samples: (B,) sample indices.
            views: (B,) view indices.

        Returns:
            probabilities (B, k) float32 and classes (B, k) int64.
        """
        probabilities = self.arrays['probabilities'][samples, views].astype(np.float32)
        classes = self.arrays['classes'][samples, views].astype(np.int64)
        return probabilities, classes

    def identity_of(self, index: int) -> Optional[int]:
        """The stored identity of sample ``index``, or None beyond the store's samples."""
        if not 0 <= index < self.num_samples:
            return None
        return int(self.arrays['sample_ids'][index])


def shard(rank: int, world_size: int, num_samples: int) -> range:
    """The contiguous share of the samples that process ``rank`` of ``world_size`` makes: the rows
    of different processes then share only the file pages at the shards' borders."""
    return range(rank * num_samples // world_size, (rank + 1) * num_samples // world_size)


def read_back(probabilities: np.ndarray, sample_ids: np.ndarray, done: np.ndarray,
              samples_per_chunk: int = 65536) -> Tuple[np.ndarray, Dict[str, float]]:
    """Read every stored row once, in chunks of ``samples_per_chunk`` samples: the samples
    marked done whose rows read back unwritten (a view whose most probable class has
    probability 0, or no identity: zeros that writes a file system lost leave, e.g. pages
    written back by several processes on a network file system), and the kept mass, how much
    of the teacher's probability the stored top-k hold over all views: the mean and the minimum
    of ``Σ_k p`` (1 when k = C; the rest is shared equally by the classes not stored when the
    logits are rebuilt).

    Args:
        probabilities: (N, K, k), as in a store.
        sample_ids: (N,) the samples' identities.
        done: (N,) 1 for the samples marked written.

    Returns:
        The lost samples' indices, (L,) int64, and ``dict(mean=..., min=...)``.
    """
    lost, total, smallest, count = [], 0.0, float('inf'), 0
    for start in range(0, len(probabilities), samples_per_chunk):
        chunk = slice(start, start + samples_per_chunk)
        rows = probabilities[chunk]
        unwritten = (rows[:, :, 0] <= 0).any(axis=1) | (sample_ids[chunk] == 0)
        lost.append(start + np.flatnonzero(unwritten & (done[chunk] == 1)))
        sums = rows.astype(np.float64).sum(axis=-1)
        total, count = total + float(sums.sum()), count + sums.size
        smallest = min(smallest, float(sums.min()))
    return (np.concatenate(lost).astype(np.int64),
            dict(mean=total / max(count, 1), min=smallest))


def read_header(folder: str, field: str) -> Dict[str, Any]:
    """The header of the store in ``folder``.

    Raises:
        FileNotFoundError: no store there, naming ``field``.
    """
    path = osp.join(folder, HEADER)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{field}: no soft-label store in {folder!r} (no {HEADER}); '
                                'make one with tools/make_soft_labels.py')
    with open(path) as file:
        return json.load(file)


def write_header(folder: str, header: Dict[str, Any]) -> None:
    """Write ``header.json`` atomically (a reader never sees half a header)."""
    temporary = osp.join(folder, f'.{HEADER}.{os.getpid()}')
    with open(temporary, 'w') as file:
        json.dump(header, file, indent=1, sort_keys=True)
    os.replace(temporary, osp.join(folder, HEADER))
