"""Helpers with no OpenMMLab component of their own."""

from .random_states import RandomStates, current_random_states, restore_random_states

__all__ = ['RandomStates', 'current_random_states', 'restore_random_states']
