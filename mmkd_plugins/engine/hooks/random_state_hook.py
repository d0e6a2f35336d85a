"""Save every process's random number generators with each checkpoint, so a resumed run is
exact."""
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import Runner

from mmkd_plugins.registry import HOOKS

RandomStates = dict  # python, numpy, torch and (when CUDA is in use) cuda: one per device


def current_random_states() -> RandomStates:
    """This process's Python, numpy, torch CPU and CUDA generator states."""
    states = dict(python=random.getstate(), numpy=np.random.get_state(),
                  torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: RandomStates) -> None:
    """Set this process's generators to ``states`` (see :func:`current_random_states`)."""
    random.setstate(states['python'])
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Store every process's RNG states in checkpoints and restore them on resume.

    mmengine re-seeds a resumed run from its initial seed, so random augmentations (and
    dropout) after a resume differ from those of the uninterrupted run. With this hook a run
    interrupted after k iterations and resumed with ``--resume`` computes the same losses as
    the uninterrupted one (given deterministic ops and data loading in the main process or
    with a re-seeded worker per epoch), also with the stock configs' ``randomness.seed=None``
    (``tools/train.py`` then rebuilds the run with the seed the interrupted run drew).

    - **What**: Python's, numpy's and torch's generators, and every CUDA device's when CUDA is
      in use, of **each process**: at the iterations (or epochs) where the ``CheckpointHook``
      saves, all processes send theirs to the one that writes the checkpoint
      (``checkpoint['rng_states']``, one entry per rank; plain tensors and numpy data,
      loadable with ``weights_only=True``).
    - **When restored**: at the start of training, after mmengine's own resume re-seeded the
      generators, and only when resuming (``load_from`` without ``resume``, i.e. fine-tuning
      from another run's weights, keeps this run's own random streams). A checkpoint written
      by another number of processes is not restored (with a warning).
    """

    priority = 'LOW'  # after each iteration/epoch, before the CheckpointHook (VERY_LOW) saves

    def __init__(self) -> None:
        self._checkpoint_hook: Optional[CheckpointHook] = None
        self._gathered: Optional[List[RandomStates]] = None
        self._to_restore: Optional[List[RandomStates]] = None

    def before_train(self, runner: Runner) -> None:
        """Find the checkpoint hook, and restore the states of a resumed checkpoint."""
        self._checkpoint_hook = next(
            (hook for hook in runner.hooks if isinstance(hook, CheckpointHook)), None)
        if self._to_restore is None:
            return
        states, self._to_restore = self._to_restore, None
        if len(states) != runner.world_size:
            runner.logger.warning(
                f'RandomStateHook: the checkpoint holds the random states of {len(states)} '
                f'processes and this run has {runner.world_size}; they are not restored, so '
                'the resumed run is not exact')
            return
        restore_random_states(states[runner.rank])

    def after_train_iter(self, runner: Runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Gather the states where an iteration-based checkpoint is about to be saved."""
        hook = self._checkpoint_hook
        if hook is not None and not hook.by_epoch and (
                hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
                or (hook.save_last and hook.is_last_train_iter(runner))):
            self._gathered = all_gather_object(current_random_states())

    def after_train_epoch(self, runner: Runner) -> None:
        """Gather the states where an epoch-based checkpoint is about to be saved."""
        hook = self._checkpoint_hook
        if hook is not None and hook.by_epoch and (
                hook.every_n_epochs(runner, hook.interval, hook.save_begin)
                or (hook.save_last and hook.is_last_train_epoch(runner))):
            self._gathered = all_gather_object(current_random_states())

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Add ``rng_states`` (one entry per rank) to the checkpoint being written."""
        checkpoint['rng_states'] = self._gathered or [current_random_states()]

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Keep the states of a checkpoint being resumed, for :meth:`before_train`."""
        states = checkpoint.get('rng_states')
        if states is None or not getattr(runner, '_resume', False):
            return
        self._to_restore = [states] if isinstance(states, dict) else list(states)
