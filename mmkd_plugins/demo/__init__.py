"""Embedded demo data: scikit-learn's handwritten digits as an image folder."""
from .digits_folder import (DIGIT_CLASSES, stratified_splits, write_annotation_file,
                            write_digits_folder, write_digits_images)

__all__ = [
    'DIGIT_CLASSES', 'stratified_splits', 'write_annotation_file', 'write_digits_folder',
    'write_digits_images'
]
