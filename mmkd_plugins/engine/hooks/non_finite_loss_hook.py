"""Stop training at the first non-finite loss of any process, before anything is saved from it."""

import math
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import all_gather_object, all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmkd_plugins.registry import HOOKS


@HOOKS.register_module()
class StopOnNonFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` naming the iteration, the process and the loss that became NaN
    or inf, on every process at the same iteration.

    It runs right after each training iteration, before any checkpoint hook, so the last checkpoint
    written stays the last good one (and the message names it). Under DDP a NaN on one process
    poisons every process's weights through the averaged gradients while the others still see finite
    losses, so the finiteness of the losses is reduced across the processes (one all-reduce of one
    number per iteration) and all of them stop.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Check every loss of this iteration, on every process."""
        bad = {key: float(value) for key, value in (outputs or {}).items()
               if 'loss' in key and not math.isfinite(float(value))}
        if len(bad) > 1:
            bad.pop('loss', None)  # the total is non-finite because a term is: name the term
        described = ', '.join(f'{key} is {value}' for key, value in bad.items())
        if get_world_size() > 1:
            any_bad = torch.tensor(float(bool(bad)))
            all_reduce(any_bad, op='max')
            if not any_bad.item():
                return
            described = '; '.join(f'process {rank}: {text}' for rank, text in
                                  enumerate(all_gather_object(described)) if text)
        elif not bad:
            return
        raise FloatingPointError(
            f'iteration {runner.iter + 1}: {described}; training stopped. '
            f'Last good checkpoint: {_last_checkpoint(runner.work_dir)}')


def _last_checkpoint(work_dir: str) -> str:
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return 'none saved yet'
    with open(record) as file:
        return file.read().strip()
