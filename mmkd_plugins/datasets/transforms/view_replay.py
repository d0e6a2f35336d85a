"""Replaying a stored view: the random transforms of a training pipeline, seeded per (sample, view),
so that the view a student trains on is exactly one the teacher labelled."""

import copy
import random
from typing import List, Optional, Sequence, cast

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS

from mmkd_plugins.registry import TRANSFORMS
from mmkd_plugins.soft_labels.store import VIEW_KEY, SoftLabelStore, read_header, sample_identity
from mmkd_plugins.utils import current_random_states, restore_random_states


def seed_generators(seed: int, sample: int, view: int) -> None:
    """Seed Python's, numpy's and torch's generators for view ``view`` of sample ``sample`` (the
    draws of every transform that uses them are then fixed)."""
    numpy_seed, python_seed, torch_seed = np.random.SeedSequence(
        [seed, sample, view]).generate_state(3)
    np.random.seed(int(numpy_seed))
    random.seed(int(python_seed))
    torch.manual_seed(int(torch_seed))


def apply_view(transforms: Sequence[BaseTransform], results: dict, seed: int, sample: int,
               view: int, approximated: Sequence[str] = (),
               skip_approximated: bool = False) -> Optional[dict]:
    """Run ``transforms`` on ``results`` with the generators seeded for (sample, view); the caller's
    generator states are restored afterwards.

    Args:
        transforms: The replayed transforms, in pipeline order.
        results: The sample as the transforms before them left it.
        seed: The store's seed.
        sample: The sample's index.
        view: The view's index.
        approximated: Names of transforms that draw from the caller's generators instead (not
            replayed: the teacher's views were made without them).
        skip_approximated: Leave those out (when making the store).

    Returns:
        The transformed results (None when a transform drops the sample).
    """
    outer = current_random_states()
    seed_generators(seed, sample, view)
    try:
        for transform in transforms:
            if type(transform).__name__ in approximated:
                if skip_approximated:
                    continue
                replayed = current_random_states()
                restore_random_states(outer)
                results = transform(results)
                outer = current_random_states()
                restore_random_states(replayed)
            else:
                results = transform(results)
            if results is None:
                return None
        return results
    finally:
        restore_random_states(outer)


def first_unreplayable_transform(transforms: Sequence[BaseTransform], results: dict, seed: int,
                                 sample: int,
                                 approximated: Sequence[str] = ()) -> Optional[str]:
    """The name of the first of ``transforms`` whose output image differs between two runs seeded
    alike (its draws come from a generator other than Python's, numpy's and torch's global ones, so
    a view could not be replayed), or None; ``approximated`` ones are left out."""
    for end in range(1, len(transforms) + 1):
        # a pipeline's replayed transforms (augmentations) keep the sample: never None
        outputs = [cast(dict, apply_view(transforms[:end], copy.deepcopy(results), seed, sample,
                                         0, approximated, skip_approximated=True))
                   for _ in range(2)]
        if not np.array_equal(outputs[0]['img'], outputs[1]['img']):
            return type(transforms[end - 1]).__name__
    return None


def build_transforms(configs: Sequence[dict]) -> List[BaseTransform]:
    """The transforms of ``configs``, built in the current default scope (the host package's)."""
    return [MMENGINE_TRANSFORMS.build(dict(config)) for config in configs]


@TRANSFORMS.register_module()
class ReplayStoredView(BaseTransform):
    """In a training pipeline, in place of its random transforms (``RandomResizedCrop``,
    ``RandomFlip``, ...): pick one of the sample's K stored views at random (from the pipeline's own
    numpy generator, like the transforms it replaces, so a resume with
    :class:`~mmkd_plugins.engine.RandomStateHook` repeats it) and make that view by running
    ``transforms`` seeded for it; its index goes to ``results['soft_label_view']``, for the
    distiller to read the teacher's stored probabilities of exactly that view.

    :class:`~mmkd_plugins.engine.DistillationRunner` puts it in place from
    ``model.soft_labels`` (see :func:`~mmkd_plugins.soft_labels.use_soft_label_store`);
    written by hand, ``PackInputs`` must pack ``'soft_label_view'`` in its ``meta_keys`` too.

    Args:
        store: The store's folder.
        transforms: The replayed transforms' configs, exactly those the store was made with.
        approximated: Names of transforms among them that run with fresh randomness (the store
            was made without them; stated in its header).
    """

    def __init__(self, store: str, transforms: List[dict],
                 approximated: Sequence[str] = ()) -> None:
        self.store_folder = store
        header = read_header(store, 'ReplayStoredView.store')
        self.views, self.seed = header['views'], header['seed']
        self.transform_configs = [dict(config) for config in transforms]
        self.transforms = build_transforms(self.transform_configs)
        self.approximated = tuple(approximated)
        self._store: Optional[SoftLabelStore] = None  # opened in each process when first used

    def transform(self, results: dict) -> Optional[dict]:
        """Replay one stored view of the sample.

        Raises:
            ValueError: the sample is not the store's sample of the same index (a store made
                for another dataset, or a dataset changed since).
        """
        if self._store is None:
            self._store = SoftLabelStore.open(self.store_folder, 'ReplayStoredView.store')
        sample = int(results['sample_idx'])
        stored = self._store.identity_of(sample)
        if stored != sample_identity(results):
            where = results.get('img_path', 'an image held in memory')
            held = (f'it holds {self._store.num_samples} samples' if stored is None else
                    'it holds another image there')
            raise ValueError(
                f'ReplayStoredView: sample {sample} ({where}) is not in the store '
                f'{self.store_folder} ({held}): the store was made for another dataset; make '
                'one for this dataset with tools/make_soft_labels.py')
        view = int(np.random.randint(self.views))
        replayed = apply_view(self.transforms, results, self.seed, sample, view,
                              self.approximated)
        if replayed is not None:
            replayed[VIEW_KEY] = view
        return replayed

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(store={self.store_folder!r}, views={self.views}, '
                f'transforms={self.transforms}, approximated={self.approximated})')
