"""Distillation losses: pure functions for the math plus thin registered modules."""

from .box_loss import BoxDistillationLoss, box_distillation_loss, generalized_iou
from .curriculum_temperature import CurriculumTemperature, curriculum_lambda, reverse_gradient
from .dist_loss import DISTLoss, dist_loss, pearson_distance, pearson_rows
from .dkd_loss import DKDLoss, dkd_loss
from .hard_distillation_loss import HardDistillationLoss, hard_distillation_loss
from .kd_loss import KDLoss, binary_kd_loss, kd_loss
from .probabilities import probabilities, row_weights_by_confidence, weighted_mean

__all__ = [
    'KDLoss', 'kd_loss', 'binary_kd_loss', 'DISTLoss', 'dist_loss', 'pearson_distance',
    'pearson_rows', 'probabilities', 'row_weights_by_confidence', 'weighted_mean', 'DKDLoss',
    'dkd_loss', 'HardDistillationLoss', 'hard_distillation_loss', 'CurriculumTemperature',
    'curriculum_lambda', 'reverse_gradient', 'BoxDistillationLoss', 'box_distillation_loss',
    'generalized_iou'
]
