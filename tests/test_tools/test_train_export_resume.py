"""tools/train.py, tools/test.py and tools/export_student.py end to end, in subprocesses.

A teacher is trained for one epoch with the stock-inheriting demo config (so its checkpoint is a
real mmengine checkpoint with HistoryBuffers), then a KD run inherits the student config, is
resumed, exported, loaded strictly into the stock student, and evaluated.
"""

import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmkd_plugins.models.teachers import build_model_from_config
from ..conftest import (KD_CONFIG, REPO_ROOT, STUDENT_CONFIG, cfg_options_args, data_options,
                        epochs_options, mmpretrain_train_script, run_tool, scalars, tool_env)


def first_run_options(digits_root: str, teacher: str) -> dict:
    """One epoch of KD, every iteration logged, no validation."""
    return dict(epochs_options(digits_root, 1), **{
        'model.teacher.checkpoint': teacher, 'default_hooks.logger.interval': 1,
        'train_cfg.val_interval': 2})


@pytest.fixture(scope='module')
def kd_run(tmp_path_factory, digits_root, trained_teacher):
    """A KD run of 1 epoch through this project's tools/train.py, then resumed to 2 epochs."""
    work_dir = str(tmp_path_factory.mktemp('kd_run'))
    options = first_run_options(digits_root, trained_teacher)
    run_tool('train.py', KD_CONFIG, '--work-dir', work_dir, *cfg_options_args(options))
    options.update({'train_cfg.max_epochs': 2})
    resumed = run_tool('train.py', KD_CONFIG, '--work-dir', work_dir, '--resume',
                       *cfg_options_args(options))
    return work_dir, resumed.stdout + resumed.stderr


def test_distillation_losses_are_logged_under_their_own_keys(kd_run):
    work_dir, _ = kd_run
    train_lines = [line for line in scalars(work_dir) if 'distill.loss_kd' in line]
    assert train_lines, 'no distillation loss in the log'
    for line in train_lines:
        assert line['distill.loss_kd'] > 0 and 'student.loss' in line
        assert line['loss'] == pytest.approx(line['student.loss'] + line['distill.loss_kd'],
                                             rel=1e-3)


def test_resume_continues_from_the_saved_epoch(kd_run):
    work_dir, log = kd_run
    assert 'resumed epoch: 1' in log.replace('Epoch', 'epoch')
    checkpoint = torch.load(osp.join(work_dir, 'epoch_2.pth'), weights_only=False)
    assert checkpoint['meta']['epoch'] == 2
    assert not any(key.startswith('teacher.') for key in checkpoint['state_dict'])
    assert any(key.startswith('student.') for key in checkpoint['state_dict'])


def test_final_student_loads_strictly_into_the_stock_config_and_tests(kd_run, digits_root):
    work_dir, _ = kd_run
    student_path = osp.join(work_dir, 'student_final.pth')
    student_config = osp.join(work_dir, 'student_config.py')
    stock = build_model_from_config(Config.fromfile(STUDENT_CONFIG))
    stock.load_state_dict(torch.load(student_path)['state_dict'], strict=True)
    exported_config = Config.fromfile(student_config)
    assert 'custom_imports' not in exported_config and 'custom_hooks' not in exported_config
    assert not any(str(hook['type']).startswith('mmkd_plugins.')
                   for hook in exported_config.default_hooks.values())
    assert exported_config.default_hooks.checkpoint.type == 'CheckpointHook'  # stock ones stay
    metrics_file = osp.join(work_dir, 'metrics.json')
    run_tool('test.py', student_config, student_path, '--work-dir', work_dir, '--out',
             metrics_file, *cfg_options_args(data_options(digits_root)))
    with open(metrics_file) as file:
        metrics = json.load(file)
    logged = [line for line in scalars(work_dir) if 'accuracy/top1' in line][-1]
    assert metrics['accuracy/top1'] == pytest.approx(logged['accuracy/top1'])


def test_export_tool_strips_the_teacher_and_never_overwrites(kd_run, tmp_path):
    work_dir, _ = kd_run
    out = str(tmp_path / 'student.pth')
    run_tool('export_student.py', osp.join(work_dir, 'epoch_2.pth'), out)
    exported = torch.load(out)['state_dict']
    final = torch.load(osp.join(work_dir, 'student_final.pth'))['state_dict']
    assert list(exported) == list(final)
    assert all(torch.equal(exported[key], final[key]) for key in final)
    again = run_tool('export_student.py', osp.join(work_dir, 'epoch_1.pth'), out, check=False)
    assert again.returncode != 0 and 'exists' in again.stderr
    assert torch.equal(torch.load(out)['state_dict']['head.fc.weight'], final['head.fc.weight'])


def training_losses(work_dir: str, run: int = -1) -> list:
    """Every logged training step's losses of one run, as (iteration, {loss name: value})."""
    return [(line['iter'], {key: value for key, value in line.items() if 'loss' in key})
            for line in scalars(work_dir, run) if 'distill.loss_kd' in line]


def test_one_config_runs_the_same_experiment_from_the_three_entry_points(
        kd_run, tmp_path, digits_root, trained_teacher):
    """mmpretrain's own tools/train.py and ``mim train mmpretrain`` (the stock script, which
    never imports mmkd_plugins: the config's scope-prefixed types and its runner_type make
    mmengine import it) log the same losses from one config as this project's tools/train.py
    (the first run of ``kd_run``), and the student exported by a stock launch loads strictly
    into the stock student config."""
    options = cfg_options_args(first_run_options(digits_root, trained_teacher))
    env = dict(tool_env())
    env.pop('PYTHONPATH')  # only the installed packages, as for a user of mim
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    launches = {
        'stock': [sys.executable, mmpretrain_train_script(), KD_CONFIG],
        'mim': [mim, 'train', 'mmpretrain', KD_CONFIG, '--gpus', '0'],
    }
    project = training_losses(kd_run[0], run=0)
    assert len(project) == 2  # every iteration of the epoch logged
    for name, command in launches.items():
        work_dir = str(tmp_path / name)
        result = subprocess.run([*command, '--work-dir', work_dir, *options],
                                cwd=str(REPO_ROOT), env=env, capture_output=True, text=True)
        assert result.returncode == 0, f'{name}:\n{result.stdout[-2000:]}{result.stderr[-4000:]}'
        assert training_losses(work_dir) == project, name
    stock = build_model_from_config(Config.fromfile(STUDENT_CONFIG))
    exported = torch.load(str(tmp_path / 'mim' / 'student_final.pth'))['state_dict']
    stock.load_state_dict(exported, strict=True)
