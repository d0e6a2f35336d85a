"""Distillation losses: pure functions for the math plus thin registered modules."""
from .dist_loss import DISTLoss, dist_loss, pearson_distance
from .kd_loss import KDLoss, kd_loss

__all__ = ['KDLoss', 'kd_loss', 'DISTLoss', 'dist_loss', 'pearson_distance']
