"""Data pipeline components (the ``datasets`` package of an OpenMMLab codebase)."""

from .transforms import ReplayStoredView

__all__ = ['ReplayStoredView']
