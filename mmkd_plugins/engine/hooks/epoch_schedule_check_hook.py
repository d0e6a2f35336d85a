"""Refuse, before the first step, schedules counted in epochs in a loop that has none."""

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, Runner

from mmkd_plugins.registry import HOOKS


@HOOKS.register_module()
class EpochScheduleCheckHook(Hook):
    """Raise ``ValueError`` at the start of training when a module of the model counts epochs
    (DKD's ``warmup_epochs``, CTKD's λ curriculum: any module with a non-None
    ``epoch_schedule``) but the train loop is not epoch-based.

    An ``IterBasedTrainLoop`` stays at epoch 0 for the whole run, so such a warm-up would never
    advance: DKD's loss weight would stay at its first-epoch fraction and CTKD's λ at its first
    value. Convert the schedule into an epoch-based loop (``train_cfg = dict(by_epoch=True,
    max_epochs=...)``), or set the warm-up to 0.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner: Runner) -> None:
        """Check the model against the runner's train loop."""
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        counted = [f'model.{name} ({type(module).__name__}.{module.epoch_schedule})'
                   for name, module in model.named_modules()
                   if getattr(module, 'epoch_schedule', None)]
        if counted:
            raise ValueError(
                f'{", ".join(counted)} counts epochs, but train_cfg runs a '
                f'{type(runner.train_loop).__name__}, whose epoch never advances; use an '
                'epoch-based loop (train_cfg=dict(by_epoch=True, max_epochs=...)) or set the '
                'warm-up to 0')
