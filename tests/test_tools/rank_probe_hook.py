"""A test-only hook that records, on every rank, what the DDP test checks."""

import json
import os.path as osp

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmkd_plugins.registry import HOOKS


@HOOKS.register_module()
class RankProbeHook(Hook):
    """Writes ``rank<r>.json`` in the work dir: each iteration's losses and the DDP wrapping."""

    def __init__(self) -> None:
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses.append({key: float(value) for key, value in outputs.items()})

    def after_train(self, runner) -> None:
        model = runner.model
        record = dict(
            rank=runner.rank,
            world_size=runner.world_size,
            wrapped=is_model_wrapper(model),
            ignored=sorted(getattr(model, 'parameters_to_ignore', [])),
            find_unused_parameters=getattr(model, 'find_unused_parameters', None),
            synced_parameters=[name for name, p in model.named_parameters()
                               if p.requires_grad],
            losses=self.losses)
        with open(osp.join(runner.work_dir, f'rank{runner.rank}.json'), 'w') as file:
            json.dump(record, file)


@HOOKS.register_module()
class PoisonLossOnRankHook(Hook):
    """Makes one rank's distillation loss NaN from one iteration on (test only): that rank's
    gradients, averaged by DDP, then poison every rank's weights."""

    priority = 'HIGHEST'

    def __init__(self, rank: int, iteration: int) -> None:
        self.rank, self.iteration = rank, iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.rank == self.rank and runner.iter == self.iteration:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            for loss in model.distill_losses.values():
                loss.loss_weight = float('nan')
