"""A hook that ends a sweep run after a few iterations, keeping the stock schedule.

Shortening ``train_cfg`` instead would change what the stock config builds (mmengine ends
epoch-based schedulers at ``max_epochs``: a 20-epoch warm-up before a 1-epoch end is refused).
With the stop flag, the stock loop, schedulers and hooks run unchanged; an epoch-based loop
stops at the end of the current epoch (the generated set is two batches), an iteration-based
one at once. ``after_train`` hooks (the student export) still run.
"""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ZooSweepStopHook(Hook):
    """Set the train loop's ``stop_training`` flag after ``iterations`` iterations.

    Args:
        iterations: Training iterations to run.
    """

    priority = 'LOWEST'

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 >= self.iterations:
            runner.train_loop.stop_training = True
