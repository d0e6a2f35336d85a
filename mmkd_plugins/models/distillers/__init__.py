"""Distillers: models that wrap a student and a frozen teacher."""
from .blockwise_distiller import BlockwiseDistiller
from .distiller import Distiller, build_distill_loss

__all__ = ['BlockwiseDistiller', 'Distiller', 'build_distill_loss']
