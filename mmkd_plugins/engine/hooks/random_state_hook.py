"""Save every process's random number generators with each checkpoint, so a resumed run is exact."""

from typing import Iterator, List, Optional

from mmengine.dist import all_gather_object
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import IterBasedTrainLoop, Runner

from mmkd_plugins.registry import HOOKS
from mmkd_plugins.utils import RandomStates, current_random_states, restore_random_states


class RestoreStatesAfterSkipping:
    """Stands in for an :class:`~mmengine.runner.IterBasedTrainLoop`'s data iterator while the
    loop skips the batches a resumed run has already trained on: once ``skipped`` batches are
    drawn, it restores ``states`` (those of the moment the next batch was drawn in the
    interrupted run) and hands the loop its own iterator back.

    Args:
        loop: The loop; ``loop.dataloader_iterator`` is replaced by this object.
        skipped: The number of batches the loop skips.
        states: This process's saved states.
    """

    def __init__(self, loop: IterBasedTrainLoop, skipped: int, states: RandomStates) -> None:
        self.loop, self.skipped, self.states = loop, skipped, states
        self.iterator: Iterator = loop.dataloader_iterator
        loop.dataloader_iterator = self

    def __iter__(self) -> 'RestoreStatesAfterSkipping':
        return self

    def __next__(self):
        if self.skipped > 0:
            self.skipped -= 1
            return next(self.iterator)
        restore_random_states(self.states)
        self.loop.dataloader_iterator = self.iterator
        return next(self.iterator)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Store every process's RNG states in checkpoints and restore them on resume.

    mmengine re-seeds a resumed run from its initial seed, so random augmentations (and
    dropout) after a resume differ from those of the uninterrupted run. With this hook a run
    interrupted after k iterations and resumed with ``--resume`` computes the same losses as
    the uninterrupted one (given deterministic ops), also with the stock configs'
    ``randomness.seed=None`` when the run is built by
    :class:`~mmkd_plugins.engine.DistillationRunner` (which rebuilds it with the seed the
    interrupted run drew), whichever train script builds it.

    - **What**: Python's, numpy's and torch's generators, and the current CUDA device's when
      CUDA is in use, of **each process**: at the iterations (or epochs) where the
      ``CheckpointHook`` saves, all processes send theirs to the one that writes the checkpoint
      (``checkpoint['rng_states']``, one entry per rank; plain tensors and numpy data,
      loadable with ``weights_only=True``).
    - **Validation** draws nothing from training's streams: the states are set back after every
      validation to what they were before it (a validation between checkpoint and next epoch,
      as stock configs run every epoch, would otherwise shift every later draw of the
      uninterrupted run and of no resumed one).
    - **When restored**: only when resuming (``load_from`` without ``resume``, i.e. fine-tuning
      from another run's weights, keeps this run's own random streams): for an epoch-based
      loop at the start of training, after mmengine's own resume re-seeded the generators; for
      an :class:`~mmengine.runner.IterBasedTrainLoop` just before the first batch after the
      ones it skips (skipping draws them again through the pipeline).
    - **What stays inexact, with a warning at resume**: states of another number of processes
      (not restored); an epoch-based loop's persistent dataloader workers
      (``train_dataloader.persistent_workers=True``), whose generators live in processes that
      no checkpoint reaches: the resumed run's workers start from their initial seeds; a run
      whose data loaders were built with another seed than the checkpoint's run (a
      ``randomness.seed=None`` run resumed with another runner than
      :class:`~mmkd_plugins.engine.DistillationRunner`): the warning gives the seed.
    """

    priority = 'LOW'  # after each iteration/epoch, before the CheckpointHook (VERY_LOW) saves

    def __init__(self) -> None:
        self._checkpoint_hook: Optional[CheckpointHook] = None
        self._gathered: Optional[List[RandomStates]] = None
        self._to_restore: Optional[List[RandomStates]] = None
        self._before_validation: Optional[RandomStates] = None

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
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            RestoreStatesAfterSkipping(loop, loop.iter, states[runner.rank])
            return
        restore_random_states(states[runner.rank])
        loader = loop.dataloader
        if getattr(loader, 'persistent_workers', False) and loader.num_workers > 0:
            runner.logger.warning(
                'RandomStateHook: train_dataloader.persistent_workers=True: the random states '
                f'of its {loader.num_workers} worker processes are not in the checkpoint, and '
                'the resumed run\'s workers start again from their initial seeds, so its '
                'random augmentations differ from the uninterrupted run\'s; set '
                'train_dataloader.persistent_workers=False for an exact resume')

    def before_val(self, runner: Runner) -> None:
        """Remember the states that training is at."""
        self._before_validation = current_random_states()

    def after_val(self, runner: Runner) -> None:
        """Set the states back to what they were before validation."""
        if self._before_validation is not None:
            restore_random_states(self._before_validation)
            self._before_validation = None

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
        """Keep the states of a checkpoint being resumed, for :meth:`before_train`, and warn when
        the data loaders were built with another seed than the checkpoint's run."""
        if not getattr(runner, '_resume', False):
            return
        seed = checkpoint.get('meta', {}).get('seed')
        if seed is not None and seed != runner.seed:
            runner.logger.warning(
                f'RandomStateHook: the checkpoint\'s run used randomness.seed={seed} and this '
                f'run\'s data loaders were built with seed {runner.seed} (the config\'s '
                'randomness.seed is None or another), so their data order and workers\' '
                'augmentations differ from the uninterrupted run\'s although mmengine re-seeds '
                f'the generators; resume with randomness.seed={seed} (--cfg-options '
                f'randomness.seed={seed}) for an exact resume (runner_type='
                "'mmkd_plugins.DistillationRunner' passes it on by itself)")
        states = checkpoint.get('rng_states')
        if states is not None:
            self._to_restore = [states] if isinstance(states, dict) else list(states)
