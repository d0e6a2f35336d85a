"""A deterministic COCO-format detection dataset of simple shapes (squares, circles, triangles).

Each image has a noisy background and one to three filled shapes of random colour and size; the
annotation file is the standard COCO json (``images``, ``annotations`` with boxes and outline
polygons, ``categories``) that mmdet's ``CocoDataset`` and pycocotools' ``COCO`` read.
"""

import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ('square', 'circle', 'triangle')


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: Sequence[int],
                colour: Tuple[int, ...]) -> None:
    x0, y0, x1, y1 = box
    if shape == 'square':
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=colour)
    elif shape == 'circle':
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=colour)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=colour)


def _outline(shape: str, box: List[int]) -> List[float]:
    """The shape's outline as one COCO polygon ``[x0, y0, x1, y1, ...]`` (a circle as 16 points), so
    that instance-segmentation pipelines (``with_mask=True``) can read it too."""
    x0, y0, x1, y1 = box
    if shape == 'square':
        points: List[Tuple[float, float]] = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    elif shape == 'circle':
        angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        points = list(zip((x0 + x1) / 2 + (x1 - x0) / 2 * np.cos(angles),
                          (y0 + y1) / 2 + (y1 - y0) / 2 * np.sin(angles)))
    else:
        points = [((x0 + x1) / 2, y0), (x1, y1), (x0, y1)]
    return [round(float(value), 2) for point in points for value in point]


def _random_image(rng: np.random.Generator, image_size: int, min_size: int, max_size: int,
                  max_objects: int) -> Tuple[Image.Image, List[Tuple[int, List[int]]]]:
    background = rng.integers(0, 90, size=(image_size, image_size, 3), dtype=np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    objects: List[Tuple[int, List[int]]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):  # place shapes without overlap
            side = int(rng.integers(min_size, max_size + 1))
            x0, y0 = (int(v) for v in rng.integers(0, image_size - side, size=2))
            box = [x0, y0, x0 + side, y0 + side]
            if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1]
                   for _, b in objects):
                label = int(rng.integers(0, len(SHAPE_CLASSES)))
                colour = tuple(int(c) for c in rng.integers(120, 256, size=3))
                _draw_shape(draw, SHAPE_CLASSES[label], tuple(box), colour)
                objects.append((label, box))
                break
    return image, objects


def write_shapes_coco(root: str, split_sizes: Dict[str, int], image_size: int = 128,
                      min_size: int = 20, max_size: int = 56, max_objects: int = 3,
                      seed: int = 0) -> Dict[str, str]:
    """Write ``root/<split>/<id>.png`` and ``root/annotations/<split>.json`` for each split.

    Args:
        root: Output folder.
        split_sizes: Split name -> number of images, e.g. ``{'train': 300, 'val': 100}``.
        image_size: Side of the square images in pixels.
        min_size: Smallest shape side in pixels.
        max_size: Largest shape side in pixels.
        max_objects: Each image has one to ``max_objects`` shapes (drawn uniformly).
        seed: Seed of the generator; the same arguments always give the same files.

    Returns:
        Split name -> annotation file path.
    """
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(SHAPE_CLASSES)]
    ann_files = {}
    for split_index, (split, size) in enumerate(split_sizes.items()):
        rng = np.random.default_rng([seed, split_index])
        os.makedirs(osp.join(root, split), exist_ok=True)
        images: List[dict] = []
        annotations: List[dict] = []
        for image_id in range(1, size + 1):
            image, objects = _random_image(rng, image_size, min_size, max_size, max_objects)
            file_name = f'{image_id:05d}.png'
            image.save(osp.join(root, split, file_name))
            images.append(dict(id=image_id, file_name=file_name, width=image_size,
                               height=image_size))
            for label, (x0, y0, x1, y1) in objects:
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=image_id, category_id=label + 1,
                    bbox=[x0, y0, x1 - x0, y1 - y0], area=(x1 - x0) * (y1 - y0), iscrowd=0,
                    segmentation=[_outline(SHAPE_CLASSES[label], [x0, y0, x1, y1])]))
        ann_files[split] = osp.join(root, 'annotations', f'{split}.json')
        with open(ann_files[split], 'w') as file:
            json.dump(dict(images=images, annotations=annotations, categories=categories), file)
    return ann_files
