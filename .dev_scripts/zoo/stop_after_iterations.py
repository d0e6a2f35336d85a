"""A hook that ends a sweep run after a few iterations, keeping the stock schedule.

Shortening ``train_cfg`` instead would change what the stock config builds (mmengine ends epoch-
based schedulers at ``max_epochs``: a 20-epoch warm-up before a 1-epoch end is refused). With this
hook the stock loop, schedulers and hooks run unchanged: an iteration-based loop stops through its
``stop_training`` flag; an epoch-based one, which reads that flag only between epochs, gets a first
epoch of exactly that many batches (its dataset wrappers, e.g. the LSJ configs' ``RepeatDataset``,
would make the epoch longer) and then the flag. ``after_train`` hooks (the student export) still
run.
"""

import itertools
from typing import Any, Iterator

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


class FirstBatches:
    """A dataloader's first ``count`` batches; every other attribute is the dataloader's."""

    def __init__(self, dataloader: Any, count: int) -> None:
        self.dataloader = dataloader
        self.count = count

    def __iter__(self) -> Iterator:
        return itertools.islice(iter(self.dataloader), self.count)

    def __len__(self) -> int:
        return min(self.count, len(self.dataloader))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dataloader, name)


@HOOKS.register_module()
class ZooSweepStopHook(Hook):
    """Stop training after ``iterations`` iterations.

    Args:
        iterations: Training iterations to run.
    """

    priority = 'LOWEST'

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if hasattr(loop, '_max_epochs'):  # epoch-based: the first epoch is the whole run
            loop.dataloader = FirstBatches(loop.dataloader, self.iterations)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 >= self.iterations:
            runner.train_loop.stop_training = True
