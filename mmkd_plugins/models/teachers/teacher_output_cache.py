"""A cache of the teacher's logits per training sample, for pipelines whose augmentation is
deterministic or recorded in each sample's metainfo.

A sample's key is its image (``img_path``; ``sample_idx`` or ``img_id`` only for datasets without
files, whose index is unique only inside one dataset) plus every recorded augmentation parameter
that changes what the teacher sees: the image shape after resizing, the flip and its direction, and
(detectors) the padded batch shape. The same key means the same teacher input, so the cached logits
are exactly what the teacher would compute again (it is in eval mode: a sample's outputs do not
depend on the rest of its batch). The image path, not an index, identifies a sample across dataset
wrappers: in a ``ConcatDataset`` each part counts its ``sample_idx`` from 0, and mmdet's ``img_id``
repeats across annotation files.
"""

from typing import Dict, Hashable, List, Optional, Sequence, Tuple, Union, cast

import torch

Logits = Union[torch.Tensor, List[torch.Tensor]]
IDENTITY_KEYS = ('img_path', 'sample_idx', 'img_id')  # by preference
AUGMENTATION_KEYS = ('img_shape', 'flip', 'flip_direction', 'batch_input_shape')


def _hashable(value) -> Hashable:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, torch.Tensor):
        return tuple(value.flatten().tolist())
    return value


def sample_key(data_sample) -> Tuple:
    """The cache key of one data sample (mmpretrain ``DataSample`` or mmdet ``DetDataSample``).

    Raises:
        KeyError: the sample's metainfo has no identity (``img_path``, ``sample_idx`` or
            ``img_id``).
    """
    meta = data_sample.metainfo
    identity = next(((name, meta[name]) for name in IDENTITY_KEYS if name in meta), None)
    if identity is None:
        raise KeyError(f'the teacher cache needs one of {IDENTITY_KEYS} in each sample\'s '
                       f'metainfo; the pipeline packs only {sorted(meta)}')
    return (identity, ) + tuple((name, _hashable(meta.get(name))) for name in AUGMENTATION_KEYS)


def split_per_sample(logits: Logits, batch_size: int) -> List[Logits]:
    """Cut a batch's logits into one entry per sample (rows are sample-major: classifier logits (B,
    C), or per level (B·H·W, A·K) for dense heads)."""
    if isinstance(logits, (list, tuple)):
        per_level = [level.chunk(batch_size) for level in logits]
        return [[level[index].clone() for level in per_level] for index in range(batch_size)]
    return [row.clone() for row in logits.chunk(batch_size)]


def join_samples(samples: Sequence[Logits]) -> Logits:
    """Inverse of :func:`split_per_sample`."""
    if isinstance(samples[0], (list, tuple)):
        return [torch.cat(levels) for levels in zip(*samples)]
    return torch.cat(list(cast(Sequence[torch.Tensor], samples)))


def entry_bytes(sample: Logits) -> int:
    """The bytes one cached sample takes."""
    levels = sample if isinstance(sample, (list, tuple)) else [sample]
    return sum(level.numel() * level.element_size() for level in levels)


def to_device(sample: Logits, device: Union[str, torch.device]) -> Logits:
    """One cached sample's logits on ``device``."""
    if isinstance(sample, (list, tuple)):
        return [level.to(device) for level in sample]
    return sample.to(device)


class TeacherOutputCache:
    """Teacher logits stored per sample key, in CPU memory (by default), at most ``max_bytes``.

    Memory: one entry per distinct key, e.g. 4 bytes x classes per image for a classifier, and
    4 bytes x positions x anchors x classes for a dense detection head (tens of MB per COCO image
    for RetinaNet: set ``max_bytes`` accordingly). Once an entry would pass ``max_bytes`` no more
    entries are stored: their samples are computed again each time (``full`` tells).

    Args:
        max_bytes: The bound of the stored entries. Defaults to None (no bound).
        storage_device: Where entries are kept; they are moved to the logits' device when
            served. Defaults to ``'cpu'`` (device memory is left to training).
    """

    def __init__(self, max_bytes: Optional[int] = None,
                 storage_device: Union[str, torch.device] = 'cpu') -> None:
        self._store: Dict[Tuple, Logits] = {}
        self.max_bytes = max_bytes
        self.storage_device = torch.device(storage_device)
        self.nbytes = 0
        self.full = False
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def missing(self, keys: Sequence[Tuple]) -> List[int]:
        """Positions of ``keys`` that are not cached yet."""
        return [index for index, key in enumerate(keys) if key not in self._store]

    def store_sample(self, key: Tuple, sample: Logits) -> None:
        """Cache one sample's logits under ``key``, unless that would pass ``max_bytes``."""
        if key in self._store:
            return
        size = entry_bytes(sample)
        if self.max_bytes is not None and self.nbytes + size > self.max_bytes:
            self.full = True
            return
        self._store[key] = to_device(sample, self.storage_device)
        self.nbytes += size

    def batch(self, keys: Sequence[Tuple], computed: Dict[int, Logits],
              device: torch.device) -> Logits:
        """The logits of ``keys`` joined into one batch on ``device``: those of positions in
        ``computed`` (just computed), the others from the cache; counts hits and misses."""
        self.misses += len(computed)
        self.hits += len(keys) - len(computed)
        return join_samples([
            computed[index] if index in computed else to_device(self._store[key], device)
            for index, key in enumerate(keys)
        ])

    @property
    def hit_rate(self) -> float:
        """Share of samples served from the cache since it was created."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
