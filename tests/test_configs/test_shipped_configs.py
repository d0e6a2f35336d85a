"""Every shipped distillation config builds, with its dataset swapped for the generated digits
and its model-zoo teacher read from torch hub's cache (random weights of the right shape)."""
import os.path as osp
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmkd_plugins.models import Distiller
from ..conftest import REPO_ROOT, save_random_checkpoint

ZOO_CONFIGS = sorted(str(p) for p in (REPO_ROOT / 'configs').glob('*/*_in1k.py'))


def cache_model_zoo_teacher(cfg: Config, torch_home: Path) -> None:
    """Place a checkpoint of the teacher's architecture where the URL would be downloaded to."""
    url = cfg.model.teacher.checkpoint
    path = torch_home / 'hub' / 'checkpoints' / osp.basename(url)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_random_checkpoint(cfg.model.teacher.config, str(path))


@pytest.mark.parametrize('config', ZOO_CONFIGS, ids=[osp.basename(c) for c in ZOO_CONFIGS])
def test_model_zoo_config_builds_and_trains_one_step(config, digits_root, tmp_path_factory,
                                                     monkeypatch):
    torch_home = tmp_path_factory.getbasetemp() / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(torch_home))
    cfg = Config.fromfile(config)
    assert cfg.model.teacher.checkpoint.startswith('https://download.openmmlab.com/')
    cache_model_zoo_teacher(cfg, torch_home)
    cfg.work_dir = str(tmp_path_factory.mktemp('work'))
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.num_workers = 0
    cfg.train_dataloader.persistent_workers = False
    cfg.train_dataloader.dataset = dict(type='CustomDataset', data_root=digits_root,
                                        ann_file='student_train.txt',
                                        pipeline=cfg.train_dataloader.dataset.pipeline)
    cfg.train_dataloader.dataset.pipeline[1].scale = 64  # RandomResizedCrop: small for CPU
    runner = Runner.from_cfg(cfg)
    assert isinstance(runner.model, Distiller)
    optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    batch = next(iter(runner.build_dataloader(cfg.train_dataloader)))
    log_vars = runner.model.train_step(batch, optim_wrapper)
    distill_keys = [key for key in log_vars if key.startswith('distill.')]
    assert distill_keys and all(torch.isfinite(torch.tensor(log_vars[k])) for k in distill_keys)
