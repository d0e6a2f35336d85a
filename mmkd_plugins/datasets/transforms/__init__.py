"""Data transforms: the replay of a soft-label store's views."""

from .view_replay import (ReplayStoredView, apply_view, build_transforms,
                          first_unreplayable_transform)

__all__ = ['ReplayStoredView', 'apply_view', 'build_transforms', 'first_unreplayable_transform']
