"""Save the random number generators with each checkpoint, so a resumed run is exact."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmkd_plugins.registry import HOOKS


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Store Python's, numpy's and torch's RNG states in checkpoints and restore them on resume.

    mmengine re-seeds a resumed run from its initial seed, so random augmentations (and dropout)
    after a resume differ from those of the uninterrupted run. With this hook a run interrupted
    after k iterations and resumed computes the same losses as the uninterrupted one (given
    deterministic ops and data loading in the main process or with a re-seeded worker per
    epoch). The states are plain tensors and numpy data, loadable with ``weights_only=True``.
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Add ``rng_states`` to the checkpoint."""
        checkpoint['rng_states'] = dict(
            python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state())

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Restore the states saved by :meth:`before_save_checkpoint`, if any."""
        states = checkpoint.get('rng_states')
        if states is None:
            return
        random.setstate(states['python'])
        np.random.set_state(states['numpy'])
        torch.set_rng_state(states['torch'])
