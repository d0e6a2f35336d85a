"""Distillers: models that wrap a student and a frozen teacher."""
from .distiller import Distiller, build_distill_loss

__all__ = ['Distiller', 'build_distill_loss']
