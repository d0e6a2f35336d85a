"""The embedded datasets: stratified digits splits and the deterministic COCO shapes."""

import filecmp
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmkd_plugins.testing import SHAPE_CLASSES, stratified_splits, write_shapes_coco


def test_stratified_splits_are_disjoint_balanced_and_take_the_rest():
    labels = np.repeat(np.arange(3), [5, 6, 7])
    splits = stratified_splits(labels, {'test': 6, 'small': 3, 'rest': None}, seed=0)
    assert [len(splits[name]) for name in ('test', 'small', 'rest')] == [6, 3, 9]
    assert np.bincount(labels[splits['test']]).tolist() == [2, 2, 2]
    assert np.bincount(labels[splits['small']]).tolist() == [1, 1, 1]
    every = np.concatenate(list(splits.values()))
    assert sorted(every.tolist()) == list(range(18))
    with pytest.raises(ValueError, match="class 0 has only 5"):
        stratified_splits(labels, {'big': 18})


def test_shapes_are_valid_coco_and_deterministic(tmp_path):
    first = write_shapes_coco(str(tmp_path / 'a'), {'train': 6, 'val': 3}, image_size=64,
                              min_size=12, max_size=24)
    second = write_shapes_coco(str(tmp_path / 'b'), {'train': 6, 'val': 3}, image_size=64,
                               min_size=12, max_size=24)
    assert filecmp.cmp(first['train'], second['train'], shallow=False)
    coco = COCO(first['train'])
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(SHAPE_CLASSES)
    assert len(coco.getImgIds()) == 6
    for ann in coco.loadAnns(coco.getAnnIds()):
        x, y, w, h = ann['bbox']
        assert 12 <= w <= 24 and w == h and 0 <= x and x + w <= 64 and y + h <= 64
        assert ann['area'] == w * h
        outline = np.array(ann['segmentation'][0]).reshape(-1, 2)  # instance-mask pipelines
        assert len(outline) == {'square': 4, 'circle': 16, 'triangle': 3}[
            SHAPE_CLASSES[ann['category_id'] - 1]]
        assert np.allclose(outline.min(0), [x, y], atol=0.01)
        assert np.allclose(outline.max(0), [x + w, y + h], atol=0.01)
        mask_area = coco.annToMask(ann).sum()  # pycocotools reads the polygon
        assert 0.4 * w * h < mask_area <= 1.05 * w * h
    with open(first['val']) as file:
        image = json.load(file)['images'][0]
    assert Image.open(tmp_path / 'a' / 'val' / image['file_name']).size == (64, 64)


def test_shapes_per_image_follow_max_objects(tmp_path):
    one = COCO(write_shapes_coco(str(tmp_path / 'one'), {'train': 12}, image_size=64,
                                 min_size=12, max_size=24, max_objects=1)['train'])
    assert [len(one.getAnnIds(imgIds=[i])) for i in one.getImgIds()] == [1] * 12
    up_to_three = COCO(write_shapes_coco(str(tmp_path / 'three'), {'train': 12},
                                         image_size=64, min_size=12, max_size=24)['train'])
    counts = [len(up_to_three.getAnnIds(imgIds=[i])) for i in up_to_three.getImgIds()]
    assert set(counts) <= {1, 2, 3} and max(counts) > 1
