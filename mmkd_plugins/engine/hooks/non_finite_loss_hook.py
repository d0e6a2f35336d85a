"""Stop training at the first non-finite loss, before anything is saved from it."""
import math
import os.path as osp
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmkd_plugins.registry import HOOKS


@HOOKS.register_module()
class StopOnNonFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` naming the iteration and the loss that became NaN or inf.

    It runs right after each training iteration, before any checkpoint hook, so the last
    checkpoint written stays the last good one (and the message names it). The check reads the
    loss values the runner logs anyway, so it adds no device synchronisation of its own.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Check every loss of this iteration."""
        bad = {key: float(value) for key, value in (outputs or {}).items()
               if 'loss' in key and not math.isfinite(float(value))}
        if not bad:
            return
        if len(bad) > 1:
            bad.pop('loss', None)  # the total is non-finite because a term is: name the term
        described = ', '.join(f'{key} is {value}' for key, value in bad.items())
        raise FloatingPointError(
            f'iteration {runner.iter + 1}: {described}; training stopped. '
            f'Last good checkpoint: {_last_checkpoint(runner.work_dir)}')


def _last_checkpoint(work_dir: str) -> str:
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return 'none saved yet'
    with open(record) as file:
        return file.read().strip()
