"""Distillers: one or several frozen teachers into a stock student; block-wise hybrids."""

from .blockwise_distiller import BlockwiseDistiller
from .distill_losses import build_distill_loss
from .distiller import Distiller, MultiTeacherDistiller

__all__ = ['BlockwiseDistiller', 'Distiller', 'MultiTeacherDistiller', 'build_distill_loss']
