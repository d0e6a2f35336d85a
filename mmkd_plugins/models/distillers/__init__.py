"""Distillers: models that wrap a student and a frozen teacher."""
from .blockwise_distiller import BlockwiseDistiller
from .distiller import Distiller, build_distill_loss
from .multi_teacher_distiller import MultiTeacherDistiller

__all__ = ['BlockwiseDistiller', 'Distiller', 'MultiTeacherDistiller', 'build_distill_loss']
