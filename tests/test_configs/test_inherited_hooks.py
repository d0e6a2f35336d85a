"""A distillation config written as the README says keeps every hook of the stock config it
inherits, and refuses epoch-counted schedules in an iteration-based loop before any step."""

from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from ..conftest import KD_CONFIG, data_options, save_random_checkpoint

OUR_HOOKS = ('ExportStudentHook', 'StopOnNonFiniteLossHook', 'RandomStateHook',
             'EpochScheduleCheckHook', 'AtomicCheckpointHook')


RUNTIME_FRAGMENT = str(Path(__file__).resolve().parents[2] / 'configs' / '_base_' /
                       'distillation_runtime.py')


def test_a_distilled_rtmdet_keeps_its_ema_and_pipeline_switch_hooks(tmp_path):
    teacher = save_random_checkpoint('mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
                                     str(tmp_path / 'rtmdet_s.pth'))
    config = tmp_path / 'kd_rtmdet.py'
    config.write_text(  # as the README tells a user to write it
        f"_base_ = ['mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py', {RUNTIME_FRAGMENT!r}]\n"
        "model = dict(_delete_=True, type='mmkd_plugins.Distiller', student={{_base_.model}},\n"
        "             teacher=dict(config='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',\n"
        f"                          checkpoint={teacher!r}),\n"
        "             distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0,\n"
        "                                              activation='sigmoid')))\n"
        "default_hooks = {{_base_.distillation_hooks}}\n")
    cfg = Config.fromfile(str(config))
    cfg.model.student.backbone.init_cfg = None  # no ImageNet download in the test
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    hooks = [type(hook).__name__ for hook in runner.hooks]
    for stock in ('EMAHook', 'PipelineSwitchHook', 'LoggerHook', 'ParamSchedulerHook'):
        assert stock in hooks, hooks
    for ours in OUR_HOOKS:
        assert hooks.count(ours) == 1, hooks
    checkpoint = next(hook for hook in runner.hooks if type(hook).__name__ ==
                      'AtomicCheckpointHook')
    assert (checkpoint.interval, checkpoint.max_keep_ckpts) == (10, 3)  # RTMDet's own settings


def iteration_based(config: str, digits_root: str, tmp_path) -> Config:
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(data_options(digits_root))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=10)
    cfg.param_scheduler = []
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.work_dir = str(tmp_path)
    return cfg


@pytest.mark.parametrize('losses,field', [
    (dict(loss_dkd=dict(type='DKDLoss', warmup_epochs=20)),
     r'model.distill_losses.loss_dkd \(DKDLoss.warmup_epochs\)'),
    (dict(loss_kd=dict(type='KDLoss', tau=dict(type='CurriculumTemperature'))),
     r'model.distill_losses.loss_kd.temperature \(CurriculumTemperature.warmup_epochs\)'),
])
def test_epoch_counted_schedules_are_refused_in_an_iteration_based_loop(
        losses, field, digits_root, teacher_checkpoint, tmp_path):
    cfg = iteration_based(KD_CONFIG, digits_root, tmp_path)
    cfg.model.teacher.checkpoint = teacher_checkpoint
    cfg.model.distill_losses = losses
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=field + '.*IterBasedTrainLoop'):
        runner.train()
    assert runner.iter == 0  # refused before the first step
    assert not list(tmp_path.glob('*.pth'))


def test_an_iteration_based_loop_without_epoch_schedules_trains(digits_root,
                                                               teacher_checkpoint, tmp_path):
    cfg = iteration_based(KD_CONFIG, digits_root, tmp_path)
    cfg.model.teacher.checkpoint = teacher_checkpoint
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2



def test_a_stock_config_with_its_own_custom_imports_inherits_the_fragment(tmp_path):
    """mmdet's ConvNeXt configs (and RTMDet-L ConvNeXt, timm examples) set custom_imports
    themselves; a fragment holding custom_imports too made mmengine refuse the README's config
    ("Duplicate key is not allowed among bases").

    The scope prefix of our types ('mmkd_plugins.Distiller') imports the package when the runner
    builds them.
    """
    config = tmp_path / 'kd_mask_rcnn_convnext.py'
    stock = 'mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py'
    config.write_text(f"_base_ = [{stock!r}, {RUNTIME_FRAGMENT!r}]\n"
                      "default_hooks = {{_base_.distillation_hooks}}\n")
    cfg = Config.fromfile(str(config))
    assert cfg.custom_imports.imports == ['mmpretrain.models']  # the stock config's own
    assert cfg.default_hooks.export_student.type == 'mmkd_plugins.ExportStudentHook'


def test_our_types_are_found_without_importing_the_package_first():
    """What a launcher that never imports mmkd_plugins (mmpretrain's or mmdet's own tools/train.py,
    mim) relies on: mmengine imports the package named by the scope prefix."""
    import subprocess
    import sys
    probe = ("import sys\n"
             "from mmengine.registry import HOOKS, MODELS, init_default_scope\n"
             "init_default_scope('mmdet')\n"
             "assert 'mmkd_plugins' not in sys.modules\n"
             "assert MODELS.get('mmkd_plugins.Distiller').__name__ == 'Distiller'\n"
             "assert HOOKS.get('mmkd_plugins.ExportStudentHook') is not None\n")
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True,
                            cwd=str(Path(RUNTIME_FRAGMENT).parents[2]))
    assert result.returncode == 0, result.stderr[-2000:]


def test_importing_the_package_only_registers_types_and_the_runner_makes_loading_safe(
        tmp_path):
    """Importing mmkd_plugins (and its analysis tools) leaves mmengine's checkpoint loaders, its
    ``local`` file backend and matplotlib's backend as they were, and warns about nothing; building
    a DistillationRunner makes loading weights-only and local writes atomic."""
    import subprocess
    import sys
    state = ("(dict(CheckpointLoader._schemes), dict(backends), dict(prefix_to_backends), "
             "dict.__getitem__(matplotlib.rcParams, 'backend'))")
    probe = ("import sys, warnings\n"
             "warnings.simplefilter('error')\n"
             "import matplotlib\n"
             "from mmengine.fileio.backends.registry_utils import backends, prefix_to_backends\n"
             "from mmengine.runner.checkpoint import CheckpointLoader\n"
             f"before = {state}\n"
             "import mmkd_plugins, mmkd_plugins.analysis\n"
             f"after = {state}\n"
             "assert after == before, (before, after)\n"
             "assert 'matplotlib.pyplot' not in sys.modules\n"
             "from mmengine.model import BaseModel\n"
             "from mmkd_plugins.engine import DistillationRunner\n"
             "class Model(BaseModel):\n"
             "    def forward(self, inputs, data_samples=None, mode='tensor'):\n"
             "        return inputs\n"
             f"DistillationRunner(model=Model(), work_dir={str(tmp_path)!r})\n"
             "assert CheckpointLoader._schemes['https://'].__name__ == "
             "'load_from_http_weights_only'\n"
             "assert CheckpointLoader._schemes[''].__name__ == "
             "'load_from_local_weights_only'\n"
             "assert backends['local'].__name__ == 'AtomicLocalBackend'\n"
             "assert prefix_to_backends[''].__name__ == 'AtomicLocalBackend'\n")
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True,
                            cwd=str(Path(RUNTIME_FRAGMENT).parents[2]))
    assert result.returncode == 0, result.stderr[-2000:]
