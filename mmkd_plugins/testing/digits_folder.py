"""Write scikit-learn's handwritten digits as an image folder that mmpretrain's CustomDataset reads.

The 1,797 8×8 digits (10 classes) ship with scikit-learn, so the demo and the tests need no
download. Images are upscaled to ``image_size`` and saved as PNG; each split gets an annotation file
of ``<relative path> <label>`` lines.
"""

import os
import os.path as osp
from typing import Dict, Iterable, List, Optional

import numpy as np
from PIL import Image

DIGIT_CLASSES = tuple(str(digit) for digit in range(10))


def stratified_splits(labels: np.ndarray, split_sizes: Dict[str, Optional[int]],
                      seed: int = 0) -> Dict[str, np.ndarray]:
    """Disjoint index sets with (as nearly as possible) equal counts per class.

    Args:
        labels: Class of each sample, shape (N,).
        split_sizes: Split name -> number of samples, or None for all that are left; the
            splits are filled in the order given.
        seed: Seed of the shuffle, so the splits are the same on every machine.

    Returns:
        Split name -> sorted sample indices.
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    pools = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in classes}
    splits = {}
    for name, size in split_sizes.items():
        if size is None:
            per_class = [len(pools[c]) for c in classes]
        else:
            per_class = [size // len(classes) + (i < size % len(classes))
                         for i in range(len(classes))]
        chosen: List[int] = []
        for c, count in zip(classes, per_class):
            if len(pools[c]) < count:
                raise ValueError(f'split {name!r}: class {c} has only {len(pools[c])} samples '
                                 f'left, {count} requested')
            chosen += pools[c][:count]
            pools[c] = pools[c][count:]
        splits[name] = np.sort(np.array(chosen))
    return splits


def write_digits_images(root: str, image_size: int = 16) -> np.ndarray:
    """Write the 1,797 digits as ``root/images/<index>.png`` (RGB, ``image_size`` square).

    Existing files are kept, so a second call is fast.

    Returns:
        The class of each image, shape (1797,).
    """
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = (digits.images / 16.0 * 255).round().astype(np.uint8)  # (N, 8, 8)
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    for index, image in enumerate(images):
        path = osp.join(root, 'images', f'{index:04d}.png')
        if not osp.exists(path):
            resized = Image.fromarray(image).resize((image_size, image_size),
                                                   Image.Resampling.BILINEAR)
            resized.convert('RGB').save(path)
    return digits.target


def write_annotation_file(path: str, indices: Iterable[int], labels: np.ndarray) -> None:
    """Write ``images/<index>.png <label>`` lines, the format of mmpretrain's CustomDataset."""
    with open(path, 'w') as file:
        for index in indices:
            file.write(f'images/{index:04d}.png {labels[index]}\n')


def write_digits_folder(root: str, split_sizes: Dict[str, Optional[int]], image_size: int = 16,
                        seed: int = 0) -> Dict[str, str]:
    """Write the digits images plus one annotation file ``root/<split>.txt`` per split.

    Args:
        root: Output folder.
        split_sizes: Split name -> number of images (None: all that are left), e.g.
            ``{'test': 500, 'train': None}``; the splits are disjoint and stratified by class.
        image_size: Side of the saved square images in pixels.
        seed: Seed of the split assignment.

    Returns:
        Split name -> annotation file path.
    """
    labels = write_digits_images(root, image_size)
    ann_files = {}
    for name, indices in stratified_splits(labels, split_sizes, seed).items():
        ann_files[name] = osp.join(root, f'{name}.txt')
        write_annotation_file(ann_files[name], indices, labels)
    return ann_files
