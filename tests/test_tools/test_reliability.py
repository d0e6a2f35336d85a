"""Distributed training, exact resume, non-finite losses and atomic checkpoints, end to end."""

import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.fileio import get_file_backend

from mmkd_plugins.checkpoint import register_atomic_local_backend, safe_torch_load
from mmkd_plugins.models.teachers import build_model_from_config
from ..conftest import (BLOCKWISE_CONFIG, KD_CONFIG, REPO_ROOT, STUDENT_CONFIG, cfg_options_args,
                        mmpretrain_train_script, run_tool, tool_env)
from ..support.runs import kd_options, probed_kd_config, run_dist_train, train_losses


def losses_straight_and_resumed(tmp_path, config: str, options: dict, interrupted: dict,
                                first_resumed_step: int):
    """Train ``config`` with ``tools/train.py`` straight through with ``options``; train it again
    stopping early (``options`` updated by ``interrupted``), then resume that run with ``options``.

    Returns:
        The straight run's and the resumed run's :func:`train_losses` from
        ``first_resumed_step`` on, and the resuming command's output.
    """
    straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    run_tool('train.py', config, '--work-dir', straight, *cfg_options_args(options))
    run_tool('train.py', config, '--work-dir', resumed,
             *cfg_options_args(dict(options, **interrupted)))
    result = run_tool('train.py', config, '--work-dir', resumed, '--resume',
                      *cfg_options_args(options))
    expected = [line for line in train_losses(straight) if line[0] >= first_resumed_step]
    after_resume = [line for line in train_losses(resumed) if line[0] >= first_resumed_step]
    assert expected and [line[0] for line in after_resume] == [line[0] for line in expected]
    return expected, after_resume, result.stdout + result.stderr


def assert_same_losses(got: list, expected: list, rel: float = 1e-5) -> None:
    for got_line, expected_line in zip(got, expected):
        assert got_line[1:] == pytest.approx(expected_line[1:], rel=rel, abs=1e-6)


def test_resumed_block_wise_run_repeats_the_uninterrupted_losses(tmp_path, digits_root,
                                                                 trained_teacher):
    """The total loss after resuming equals the uninterrupted run's: it includes every hybrid's
    terms, so the connectors (weights and BatchNorm statistics) must have been restored.

    (The KD config's exact resume: the stock-defaults test below.)
    """
    expected, after_resume, _ = losses_straight_and_resumed(
        tmp_path, BLOCKWISE_CONFIG, kd_options(digits_root, trained_teacher, 2),
        {'train_cfg.max_epochs': 1}, first_resumed_step=6)  # epoch 2: steps 6-10
    assert len(expected) == 5
    assert_same_losses(after_resume, expected)
    resumed = str(tmp_path / 'resumed')
    saved = torch.load(osp.join(resumed, 'epoch_1.pth'), weights_only=False)['state_dict']
    assert any(key.startswith('hybrids.connectors.stage1.') for key in saved)
    stock = build_model_from_config(Config.fromfile(STUDENT_CONFIG))
    exported = torch.load(osp.join(resumed, 'student_final.pth'))['state_dict']
    stock.load_state_dict(exported, strict=True)  # no connector, no teacher


def dist_train(config: str, work_dir: str, options: dict, *args: str) -> list:
    """A successful 2-process run; each rank's probe record."""
    result = run_dist_train(config, work_dir, options, *args)
    assert result.returncode == 0, result.stderr[-5000:]
    records = []
    for rank in (0, 1):
        with open(osp.join(work_dir, f'rank{rank}.json')) as file:
            records.append(json.load(file))
    return records


def test_two_process_ddp_syncs_only_the_student_and_each_rank_trains_its_own_shard(
        tmp_path, digits_root, trained_teacher):
    work_dir = str(tmp_path / 'ddp')
    records = dist_train(probed_kd_config(tmp_path), work_dir,
                         kd_options(digits_root, trained_teacher, 2))
    for record in records:
        assert record['world_size'] == 2 and record['wrapped']
        assert record['find_unused_parameters'] is False
        # The teacher is outside the module tree: DDP neither syncs nor needs to ignore it.
        assert record['synced_parameters'] and not record['ignored']
        assert not any('teacher' in name for name in record['synced_parameters'])
        kd_losses = [step['distill.loss_kd'] for step in record['losses']]
        assert len(kd_losses) == 6  # 20 images per rank, batch 8: 3 iterations x 2 epochs
        assert all(0 < loss < float('inf') for loss in kd_losses)
    assert records[0]['losses'] != records[1]['losses']  # each rank saw its own shard
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth'))) == [
        'epoch_1.pth', 'epoch_2.pth', 'student_final.pth']
    assert len(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))) == 1


def test_resume_without_the_distillation_runner_names_the_seed_to_pass(
        tmp_path, digits_root, trained_teacher):
    """With another runner than the distillation configs' (here mmengine's, through mmpretrain's own
    tools/train.py, launched after registering the weights-only loaders as a user of another runner
    must), a ``randomness.seed=None`` run is resumed with data loaders built from a new random seed
    before mmengine reads the checkpoint's: the resume says so, with the seed that makes it
    exact."""
    script = tmp_path / 'stock_train_with_safe_loading.py'
    script.write_text('import runpy, sys\n'
                      'from mmkd_plugins.checkpoint import register_weights_only_loaders\n'
                      'register_weights_only_loaders()\n'
                      f'sys.argv[0] = {mmpretrain_train_script()!r}\n'
                      "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    work_dir = str(tmp_path / 'stock')
    options = cfg_options_args(kd_options(digits_root, trained_teacher, 1, **{
        'randomness.seed': None, 'runner_type': 'Runner'}))
    outputs = []
    for args in ([], ['--resume']):
        result = subprocess.run([sys.executable, str(script), KD_CONFIG, '--work-dir', work_dir,
                                 *args, *options], cwd=REPO_ROOT, env=tool_env(),
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-4000:]
        outputs.append(result.stdout + result.stderr)
    drawn = safe_torch_load(osp.join(work_dir, 'epoch_1.pth'))['meta']['seed']
    assert 'randomness.seed' not in outputs[0]
    assert f'resume with randomness.seed={drawn} (--cfg-options randomness.seed={drawn})' in (
        outputs[1])


def test_resume_is_exact_with_the_stock_defaults(tmp_path, digits_root, trained_teacher):
    """What stock configs do: ``randomness.seed=None`` (the resumed run must be rebuilt with
    the seed the interrupted run drew), validation every epoch (after the checkpoint, before
    the next epoch: creating its loader draws from torch's generator, which the student's drop
    path reads next; failed before validation was kept off training's streams), and the
    augmentations in 2 dataloader workers (which mmengine seeds anew every epoch)."""
    straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    options = kd_options(digits_root, trained_teacher, 2, **{
        'train_cfg.val_interval': 1, 'model.student.backbone.drop_path_rate': 0.5,
        'train_dataloader.num_workers': 2, 'randomness.seed': None})
    run_tool('train.py', KD_CONFIG, '--work-dir', resumed,
             *cfg_options_args(dict(options, **{'train_cfg.max_epochs': 1})))
    drawn = safe_torch_load(osp.join(resumed, 'epoch_1.pth'))['meta']['seed']
    run_tool('train.py', KD_CONFIG, '--work-dir', straight,
             *cfg_options_args(dict(options, **{'randomness.seed': drawn})))
    run_tool('train.py', KD_CONFIG, '--work-dir', resumed, '--resume',
             *cfg_options_args(options))
    expected = [line for line in train_losses(straight) if line[0] > 5]  # epoch 2: steps 6-10
    after_resume = train_losses(resumed)[-5:]
    assert len(expected) == 5
    assert [line[0] for line in after_resume] == [line[0] for line in expected]
    # Batches from dataloader workers arrive through shared memory at other alignments in each
    # run, and the CPU kernels may then round differently (once 2.4e-4 relative on a KD loss of
    # 9e-3, the seed being drawn anew each time); another drop-path or augmentation stream after
    # the resume moves the losses by far more than 1e-3.
    assert_same_losses(after_resume, expected, rel=1e-3)


def test_resume_with_persistent_workers_warns_that_it_is_not_exact(tmp_path, digits_root,
                                                                   trained_teacher):
    """Persistent dataloader workers (every stock mmdet config) keep their generators in
    their own processes: the resumed run's workers start from their initial seeds, and the
    resume says so, naming the field."""
    work_dir = str(tmp_path / 'persistent')
    options = kd_options(digits_root, trained_teacher, 1, **{
        'train_dataloader.num_workers': 2, 'train_dataloader.persistent_workers': True})
    first = run_tool('train.py', KD_CONFIG, '--work-dir', work_dir, *cfg_options_args(options))
    options['train_cfg.max_epochs'] = 2
    resumed = run_tool('train.py', KD_CONFIG, '--work-dir', work_dir, '--resume',
                       *cfg_options_args(options))
    warning = 'train_dataloader.persistent_workers=True: the random states'
    assert warning not in first.stdout + first.stderr
    assert warning in resumed.stdout + resumed.stderr


def test_resume_of_an_iteration_based_loop_is_exact(tmp_path, digits_root, trained_teacher):
    """An ``IterBasedTrainLoop`` resumed at iteration 5 draws the 5 trained batches again
    through the pipeline before going on; the saved states are restored after that (failed
    when they were restored before: the skipped batches consumed them). Validation at the
    checkpoint's iteration, and an epoch of the data ending there, are in the way too."""
    config = tmp_path / 'kd_iterations.py'
    config.write_text(
        f'_base_ = {KD_CONFIG!r}\n'
        "train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=10, "
        'val_interval=5)\n'
        "param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', by_epoch=False, "
        'T_max=10, end=10)\n'  # the interrupted run's scheduler too (its end, else max_iters)
        'default_hooks = dict(checkpoint=dict(by_epoch=False))\n'
        'log_processor = dict(by_epoch=False)\n')
    options = kd_options(digits_root, trained_teacher, 2,
                         **{'default_hooks.checkpoint.interval': 5})
    for key in ('train_cfg.max_epochs', 'train_cfg.val_interval'):
        options.pop(key)
    expected, after_resume, output = losses_straight_and_resumed(
        tmp_path, str(config), options, {'train_cfg.max_iters': 5}, first_resumed_step=6)
    assert 'Advance dataloader 5 steps' in output
    assert len(expected) == 5
    assert_same_losses(after_resume, expected)


def test_ddp_resume_restores_each_ranks_random_states(tmp_path, digits_root, trained_teacher):
    """With ``diff_rank_seed`` each process draws its own augmentations; after a resume each must
    continue its own random streams (not rank 0's), so that both ranks repeat the uninterrupted
    run's losses."""
    config = probed_kd_config(tmp_path)
    per_rank = {'randomness.diff_rank_seed': True}
    straight = dist_train(config, str(tmp_path / 'straight'),
                          kd_options(digits_root, trained_teacher, 2, **per_rank))
    dist_train(config, str(tmp_path / 'resumed'),
               kd_options(digits_root, trained_teacher, 1, **per_rank))
    resumed = dist_train(config, str(tmp_path / 'resumed'),
                         kd_options(digits_root, trained_teacher, 2, **per_rank), '--resume')
    states = safe_torch_load(str(tmp_path / 'resumed' / 'epoch_1.pth'))['rng_states']
    assert len(states) == 2 and not torch.equal(states[0]['torch'], states[1]['torch'])
    for rank in (0, 1):
        expected = [step['loss'] for step in straight[rank]['losses'][3:]]  # epoch 2
        got = [step['loss'] for step in resumed[rank]['losses']]
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-6), rank


def test_with_an_ema_hook_the_exported_student_is_the_ema_student(tmp_path, digits_root,
                                                                  trained_teacher):
    """``student_final.pth`` holds the weights validation measured (the EMA ones), the same as
    ``tools/export_student.py`` exports from the last checkpoint."""
    config = tmp_path / 'kd_with_ema.py'
    config.write_text(f'_base_ = {KD_CONFIG!r}\n'
                      "custom_hooks = [dict(type='EMAHook', momentum=0.5)]\n")
    work_dir = str(tmp_path / 'ema')
    run_tool('train.py', str(config), '--work-dir', work_dir,
             *cfg_options_args(kd_options(digits_root, trained_teacher, 1)))
    final = safe_torch_load(osp.join(work_dir, 'student_final.pth'))
    assert final['meta']['ema'] is True
    out = str(tmp_path / 'exported.pth')
    run_tool('export_student.py', osp.join(work_dir, 'epoch_1.pth'), out)
    exported = safe_torch_load(out)['state_dict']
    assert list(final['state_dict']) == list(exported)
    assert all(torch.equal(final['state_dict'][key], exported[key]) for key in exported)
    raw = safe_torch_load(osp.join(work_dir, 'epoch_1.pth'))['ema_state_dict']  # swapped
    assert not torch.equal(raw['module.student.head.fc.weight'],
                           final['state_dict']['head.fc.weight'])


def test_the_nan_stop_runs_before_an_iteration_checkpoint_is_written(tmp_path, digits_root,
                                                                   trained_teacher):
    """Checkpoints every iteration: the NaN at iteration 4 must stop the run before the checkpoint
    hook of that same iteration writes the weights its NaN gradients updated."""
    config = tmp_path / 'kd_poisoned.py'
    config.write_text(
        f'_base_ = {KD_CONFIG!r}\n'
        "custom_imports = dict(imports=['mmkd_plugins', 'tests.test_tools.rank_probe_hook'])\n"
        "custom_hooks = [dict(type='mmkd_plugins.PoisonLossOnRankHook', rank=0, iteration=3)]\n")
    work_dir = str(tmp_path / 'by_iteration')
    options = kd_options(digits_root, trained_teacher, 1, **{
        'default_hooks.checkpoint.by_epoch': False, 'default_hooks.checkpoint.interval': 1,
        'default_hooks.checkpoint.max_keep_ckpts': 10})
    result = run_tool('train.py', str(config), '--work-dir', work_dir,
                      *cfg_options_args(options), check=False)
    assert result.returncode != 0
    assert 'iteration 4: distill.loss_kd is nan' in result.stderr
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, 'iter_*.pth'))) == [
        'iter_1.pth', 'iter_2.pth', 'iter_3.pth']
    last_good = safe_torch_load(osp.join(work_dir, 'iter_3.pth'))
    assert last_good['meta']['iter'] == 3  # this run's, written just before the NaN step
    assert all(torch.isfinite(v).all() for v in last_good['state_dict'].values()
               if v.is_floating_point())


def test_non_finite_loss_stops_with_iteration_and_keeps_last_checkpoint(
        tmp_path, digits_root, trained_teacher):
    work_dir = str(tmp_path / 'nan')
    run_tool('train.py', KD_CONFIG, '--work-dir', work_dir,
             *cfg_options_args(kd_options(digits_root, trained_teacher, 1)))
    broken = kd_options(digits_root, trained_teacher, 2,
                        **{'model.distill_losses.loss_kd.loss_weight': 'nan'})
    result = run_tool('train.py', KD_CONFIG, '--work-dir', work_dir, '--resume',
                      *cfg_options_args(broken), check=False)
    assert result.returncode != 0
    assert 'iteration 6: distill.loss_kd is nan' in result.stderr
    assert 'epoch_1.pth' in result.stderr  # the message names the last good checkpoint
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    good = safe_torch_load(osp.join(work_dir, 'epoch_1.pth'))
    weights = [v for v in good['state_dict'].values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in weights)


def test_a_nan_on_one_ddp_process_stops_every_process_before_the_checkpoint(
        tmp_path, digits_root, trained_teacher):
    """Rank 1's loss turns NaN at the last iteration of epoch 2; rank 0's stays finite there,
    but the averaged gradients poison its weights too: both must stop before epoch_2.pth."""
    config = tmp_path / 'kd_poisoned.py'
    config.write_text(
        f'_base_ = {KD_CONFIG!r}\n'
        "custom_imports = dict(imports=['mmkd_plugins', 'tests.test_tools.rank_probe_hook'])\n"
        "custom_hooks = [dict(type='mmkd_plugins.PoisonLossOnRankHook', rank=1, iteration=5)]\n")
    work_dir = tmp_path / 'poisoned'
    result = run_dist_train(str(config), str(work_dir),
                            kd_options(digits_root, trained_teacher, 2))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    stops = [line for line in output.splitlines() if 'FloatingPointError: iteration 6: ' in line]
    assert len(stops) == 2, output[-5000:]  # both processes, at the same iteration
    assert all('process 1: distill.loss_kd is nan' in line for line in stops)
    assert all('Last good checkpoint: ' in line and 'epoch_1.pth' in line for line in stops)
    assert not (work_dir / 'epoch_2.pth').exists()
    good = safe_torch_load(str(work_dir / 'epoch_1.pth'))
    assert all(torch.isfinite(v).all() for v in good['state_dict'].values()
               if v.is_floating_point())


def test_checkpoint_write_interrupted_before_rename_keeps_the_old_file(tmp_path, monkeypatch):
    register_atomic_local_backend()  # as the distillation runner does when it is built
    path = str(tmp_path / 'epoch_1.pth')
    backend = get_file_backend(path)
    backend.put(b'old complete checkpoint', path)

    def killed(*args):
        raise KeyboardInterrupt('killed while saving')

    monkeypatch.setattr(os, 'replace', killed)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'new checkpoint that never completes', path)
    with open(path, 'rb') as file:
        assert file.read() == b'old complete checkpoint'
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary file left behind
