"""Shared fixtures: the generated digits folder, demo configs and teacher checkpoints."""

import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import torch
from mmengine.registry import init_default_scope

import mmkd_plugins  # noqa: F401
from mmkd_plugins.testing import SHAPE_CLASSES, write_digits_folder, write_shapes_coco

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / '.dev_scripts'))  # the zoo sweep's config changes
from zoo.case_runner import save_random_teacher  # noqa: E402

DEMO_CONFIGS = REPO_ROOT / 'configs' / 'demo'
TEACHER_CONFIG = str(DEMO_CONFIGS / 'teacher_resnet18w32_digits.py')
STUDENT_CONFIG = str(DEMO_CONFIGS / 'student_resnet18w8_digits.py')
TINY_SPLITS = {'test': 30, 'student_train': 40, 'teacher_train': 40}
DET_DEMO_CONFIGS = DEMO_CONFIGS / 'det'


def pytest_configure(config: pytest.Config) -> None:
    """On pytest-xdist's worker processes, share the cores: each worker's torch gets its part of
    them (tools/run_tests.sh starts one worker per core)."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """Build models as the Runner of an mmpretrain config would."""
    init_default_scope('mmpretrain')


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('digits'))
    write_digits_folder(root, TINY_SPLITS, image_size=16)
    return root


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory) -> str:
    """A tiny generated COCO-format detection dataset: 16 train, 8 val, 8 train_small."""
    root = str(tmp_path_factory.mktemp('shapes'))
    write_shapes_coco(root, {'train': 16, 'val': 8, 'train_small': 8}, image_size=64,
                      min_size=16, max_size=28)
    return root


def shapes_dataset(root: str, split: str, pipeline: list) -> dict:
    """A ``CocoDataset`` config reading the generated shapes."""
    return dict(type='CocoDataset', data_root=root, ann_file=f'annotations/{split}.json',
                data_prefix=dict(img=f'{split}/'), metainfo=dict(classes=SHAPE_CLASSES),
                pipeline=pipeline)


def save_random_checkpoint(config: str, path: str, cfg_options: Optional[dict] = None,
                           seed: int = 0, initialized: bool = False) -> str:
    """Build ``config``'s model with random weights and save it as a model-zoo checkpoint (the zoo
    sweep's :func:`save_random_teacher`, which says what ``initialized`` does); returns ``path``."""
    save_random_teacher(config, path, initialized, seed, cfg_options)
    return path


@pytest.fixture(scope='session')
def teacher_checkpoint(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    return save_random_checkpoint(TEACHER_CONFIG, path)


def data_options(digits_root: str) -> Dict[str, str]:
    """Config overrides that point every dataloader of a demo config at ``digits_root``."""
    return {f'{split}_dataloader.dataset.data_root': digits_root
            for split in ('train', 'val', 'test')}


def cfg_options_args(options: Dict[str, object]) -> List[str]:
    """``--cfg-options`` arguments for the command-line tools."""
    return ['--cfg-options'] + [f'{key}={value}' for key, value in options.items()]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a rendezvous)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def tool_env() -> Dict[str, str]:
    """Environment for running the tools in a subprocess from the repository root."""
    env = dict(os.environ)
    env['PYTHONPATH'] = str(REPO_ROOT) + osp.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


KD_CONFIG = str(DEMO_CONFIGS / 'kd_resnet18w32_resnet18w8_digits.py')
BLOCKWISE_CONFIG = str(DEMO_CONFIGS / 'blockwise_resnet18w32_resnet18w8_digits.py')


def run_tool(script: str, *args: str, check: bool = True,
             folder: str = 'tools') -> subprocess.CompletedProcess:
    """Run ``<folder>/<script>`` (``tools/`` by default; ``.dev_scripts`` for the research scripts)
    in a subprocess from the repository root."""
    result = subprocess.run([sys.executable, str(REPO_ROOT / folder / script), *args],
                            cwd=REPO_ROOT, env=tool_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f'{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}')
    return result


def mmpretrain_train_script() -> str:
    """mmpretrain's own tools/train.py, the script ``mim train mmpretrain`` runs."""
    import mmpretrain
    return osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')


def epochs_options(digits_root: str, epochs: int) -> Dict[str, object]:
    """Overrides for a short demo-config run on the tiny digits, checkpointing every epoch."""
    return dict(data_options(digits_root), **{
        'train_cfg.max_epochs': epochs, 'train_cfg.val_interval': epochs,
        'default_hooks.checkpoint.interval': 1, 'default_hooks.checkpoint.max_keep_ckpts': 3})


def scalars(work_dir: str, run: int = -1) -> List[dict]:
    """The runner's scalar log lines (one JSON object per logged step) of one run in ``work_dir``:

    the latest by default, ``run=0`` the first.
    """
    path = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[run]
    with open(path) as file:
        return [json.loads(line) for line in file]


@pytest.fixture(scope='session')
def trained_teacher(tmp_path_factory, digits_root) -> str:
    """A real mmengine checkpoint (with HistoryBuffers) of the demo teacher, one epoch."""
    work_dir = str(tmp_path_factory.mktemp('teacher_run'))
    run_tool('train.py', TEACHER_CONFIG, '--work-dir', work_dir,
             *cfg_options_args(epochs_options(digits_root, 1)))
    return osp.join(work_dir, 'epoch_1.pth')
