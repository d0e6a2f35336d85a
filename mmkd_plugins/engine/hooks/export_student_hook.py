"""Write a student-only checkpoint and config when training ends."""

import os.path as osp

from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import get_state_dict

from mmkd_plugins.checkpoint import atomic_torch_save, extract_student_state_dict
from mmkd_plugins.registry import HOOKS
from mmkd_plugins.soft_labels.pipeline_rewrite import undo_soft_label_store


@HOOKS.register_module()
class ExportStudentHook(Hook):
    """After training, save ``student_final.pth`` and ``student_config.py`` in the work dir.

    The checkpoint holds only the student's weights (plus ``meta``) and loads strictly into the
    stock student config; the config is the run's config with ``model`` replaced by the
    student's, ready for the stock ``tools/test.py`` of mmpretrain/mmdet. With an ``EMAHook``
    in the run (MobileOne, ConvNeXt, RTMDet, YOLOX configs), the weights are the EMA student's:
    those that validation measured and that every checkpoint's ``state_dict`` holds, as
    ``tools/export_student.py`` exports them. Only rank 0 writes.

    Args:
        filename: Name of the checkpoint in the work dir. Defaults to ``'student_final.pth'``.
    """

    priority = 'VERY_LOW'

    def __init__(self, filename: str = 'student_final.pth') -> None:
        self.filename = filename

    def after_train(self, runner: Runner) -> None:
        """Export the student of ``runner.model``."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'student'):
            raise TypeError(f'ExportStudentHook: the model is a {type(model).__name__}, '
                            'not a distiller with a student')
        if runner.rank != 0:
            return
        ema_hook = next((hook for hook in runner.hooks if isinstance(hook, EMAHook)), None)
        if ema_hook is not None:
            model = ema_hook.ema_model.module  # the averaged copy of the distiller
        checkpoint = {
            'meta': dict(epoch=runner.epoch, iter=runner.iter, seed=runner.seed,
                         dataset_meta=getattr(runner.train_dataloader.dataset, 'metainfo', None),
                         exported_by='mmkd_plugins', ema=ema_hook is not None),
            'state_dict': extract_student_state_dict(get_state_dict(model)),
        }
        out_path = osp.join(runner.work_dir, self.filename)
        atomic_torch_save(checkpoint, out_path)
        student_config = runner.cfg.copy()
        student_config.model = runner.cfg.model.student
        student_config.update(resume=False, load_from=None)
        _drop_own_parts(student_config)
        undo_soft_label_store(student_config)  # the stock pipeline again
        student_config.dump(osp.join(runner.work_dir, 'student_config.py'))
        runner.logger.info(f'student-only checkpoint written to {out_path}')


# Our hooks that stand in for a stock one: the exported config names the stock one again.
STOCK_EQUIVALENTS = {'mmkd_plugins.AtomicCheckpointHook': 'CheckpointHook'}


def _is_own_hook(hook: dict) -> bool:
    return str(hook.get('type', '')).startswith('mmkd_plugins.')


def _drop_own_parts(config) -> None:
    """Remove our hooks (from ``default_hooks`` and ``custom_hooks``; those standing in for a stock
    hook become it again, with their settings), our runner type and ``mmkd_plugins`` from
    ``custom_imports``: the stock tools need none of them; the user's other hooks and imports
    stay."""
    if str(config.get('runner_type', '')).startswith('mmkd_plugins.'):
        config.pop('runner_type')
    if config.get('default_hooks'):
        default_hooks = {}
        for name, hook in config.default_hooks.items():
            if hook is not None and hook.get('type') in STOCK_EQUIVALENTS:
                default_hooks[name] = dict(hook, type=STOCK_EQUIVALENTS[hook['type']])
            elif hook is None or not _is_own_hook(hook):
                default_hooks[name] = hook
        config.default_hooks = default_hooks
    config.pop('distillation_hooks', None)  # the variable of configs/_base_/distillation_runtime
    hooks = [hook for hook in config.get('custom_hooks', []) if not _is_own_hook(hook)]
    if hooks:
        config.custom_hooks = hooks
    else:
        config.pop('custom_hooks', None)
    custom_imports = config.get('custom_imports')
    if not custom_imports:
        return
    imports = [name for name in custom_imports.get('imports', []) if name != 'mmkd_plugins']
    if imports:
        config.custom_imports = dict(custom_imports, imports=imports)
    else:
        config.pop('custom_imports')
