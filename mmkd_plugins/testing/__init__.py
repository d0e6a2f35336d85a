"""Data generators for the demos and the tests (as ``mmdet.testing``): scikit-learn's handwritten
digits as an image folder, and a generated COCO-format dataset of shapes."""

from .digits_folder import (DIGIT_CLASSES, stratified_splits, write_annotation_file,
                            write_digits_folder, write_digits_images)
from .shapes_coco import SHAPE_CLASSES, write_shapes_coco

__all__ = [
    'DIGIT_CLASSES', 'stratified_splits', 'write_annotation_file', 'write_digits_folder',
    'write_digits_images', 'SHAPE_CLASSES', 'write_shapes_coco'
]
