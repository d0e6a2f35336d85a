"""A cache of the teacher's logits per training sample, for pipelines whose augmentation is
deterministic or recorded in each sample's metainfo.

A sample's key is its image (``img_path``; ``sample_idx`` or ``img_id`` only for datasets without
files, whose index is unique only inside one dataset) plus every recorded augmentation parameter
that changes what the teacher sees: the image shape after resizing, the flip and its direction,
and (detectors) the padded batch shape. The same key means the same teacher input, so the cached
logits are exactly what the teacher would compute again (it is in eval mode: a sample's outputs
do not depend on the rest of its batch). The image path, not an index, identifies a sample
across dataset wrappers: in a ``ConcatDataset`` each part counts its ``sample_idx`` from 0, and
mmdet's ``img_id`` repeats across annotation files.
"""
from typing import Dict, Hashable, List, Optional, Sequence, Tuple, Union

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
    """The cache key of one data sample (mmpretrain ``DataSample`` or mmdet
    ``DetDataSample``).

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
    """Cut a batch's logits into one entry per sample (rows are sample-major: classifier
    logits (B, C), or per level (B·H·W, A·K) for dense heads)."""
    if isinstance(logits, (list, tuple)):
        per_level = [level.chunk(batch_size) for level in logits]
        return [[level[index].clone() for level in per_level] for index in range(batch_size)]
    return [row.clone() for row in logits.chunk(batch_size)]


def join_samples(samples: Sequence[Logits]) -> Logits:
    """Inverse of :func:`split_per_sample`."""
    if isinstance(samples[0], (list, tuple)):
        return [torch.cat(levels) for levels in zip(*samples)]
    return torch.cat(list(samples))


class TeacherOutputCache:
    """Teacher logits stored per sample key, on the device they were computed on.

    Memory: one entry per distinct key, e.g. 4 bytes x classes per image for a classifier.
    """

    def __init__(self) -> None:
        self._store: Dict[Tuple, Logits] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def missing(self, keys: Sequence[Tuple]) -> List[int]:
        """Positions of ``keys`` that are not cached yet."""
        return [index for index, key in enumerate(keys) if key not in self._store]

    def store(self, keys: Sequence[Tuple], logits: Logits) -> None:
        """Cache a batch's logits (sample-major rows) under ``keys``."""
        for key, sample in zip(keys, split_per_sample(logits, len(keys))):
            self._store[key] = sample

    def batch(self, keys: Sequence[Tuple], num_computed: Optional[int] = None) -> Logits:
        """The cached logits of ``keys`` joined into one batch; counts hits and misses
        (``num_computed`` of them were just computed)."""
        computed = num_computed or 0
        self.misses += computed
        self.hits += len(keys) - computed
        return join_samples([self._store[key] for key in keys])

    @property
    def hit_rate(self) -> float:
        """Share of samples served from the cache since it was created."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
