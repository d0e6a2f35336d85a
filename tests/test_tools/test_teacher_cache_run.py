"""TeacherCacheHook through tools/train.py: a cached run computes the uncached run's losses."""

import pytest

from ..conftest import KD_CONFIG, cfg_options_args, run_tool, scalars
from ..support.runs import kd_options, run_dist_train, train_losses

DETERMINISTIC_KD = (
    f'_base_ = {KD_CONFIG!r}\n'
    "train_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'),\n"
    "                                               dict(type='PackInputs')]))\n")


def test_cached_run_repeats_the_uncached_losses(tmp_path, digits_root, trained_teacher):
    plain_config, cached_config = tmp_path / 'plain.py', tmp_path / 'cached.py'
    plain_config.write_text(DETERMINISTIC_KD)
    cached_config.write_text(DETERMINISTIC_KD + "default_hooks = dict(\n"
                             "    teacher_cache=dict(type='mmkd_plugins.TeacherCacheHook'))\n")
    options = cfg_options_args(kd_options(digits_root, trained_teacher, 2))
    plain, cached = str(tmp_path / 'plain'), str(tmp_path / 'cached')
    run_tool('train.py', str(plain_config), '--work-dir', plain, *options)
    run_tool('train.py', str(cached_config), '--work-dir', cached, *options)
    expected, got = train_losses(plain), train_losses(cached)
    assert len(got) == len(expected) == 10  # 2 epochs of 5 iterations
    for line, reference in zip(got, expected):
        assert line == pytest.approx(reference, rel=1e-6)
    rates = [line['teacher_cache_hit_rate'] for line in scalars(cached)
             if 'teacher_cache_hit_rate' in line]
    # 40 images in 5 batches of 8: epoch 1 computes every one, epoch 2 serves every one.
    expected_rates = [0.0] * 5 + [8 * k / (40 + 8 * k) for k in range(1, 6)]
    assert rates == pytest.approx(expected_rates, abs=1e-4)


def test_a_random_crop_pipeline_is_refused_before_training(tmp_path, digits_root,
                                                           trained_teacher):
    config = tmp_path / 'cached_crop.py'
    config.write_text(f'_base_ = {KD_CONFIG!r}\n'
                      "custom_hooks = [dict(type='mmkd_plugins.TeacherCacheHook')]\n")
    result = run_tool('train.py', str(config), '--work-dir', str(tmp_path / 'run'),
                      *cfg_options_args(kd_options(digits_root, trained_teacher, 1)),
                      check=False)
    assert result.returncode != 0
    assert 'RandomResizedCrop draws random parameters' in result.stderr
    assert not list((tmp_path / 'run').glob('epoch_*.pth'))


@pytest.mark.parametrize('shared', [True, False], ids=['shared', 'per-rank'])
def test_under_ddp_every_rank_finds_every_sample_from_the_second_epoch(
        tmp_path, digits_root, trained_teacher, shared):
    """2 gloo processes, 40 images, a sampler that reshuffles every epoch: with the logits shared
    across ranks rank 0 serves all 20 samples of epoch 2 from the cache (hit rate 0.5 at its end);
    caching only its own, it finds about half of them (the defect it fixes)."""
    config = tmp_path / 'cached.py'
    config.write_text(DETERMINISTIC_KD + "default_hooks = dict(teacher_cache=dict(\n"
                      f"    type='mmkd_plugins.TeacherCacheHook', share_across_ranks={shared}))\n")
    work_dir = str(tmp_path / 'run')
    result = run_dist_train(str(config), work_dir, kd_options(digits_root, trained_teacher, 2))
    assert result.returncode == 0, result.stderr[-4000:]
    rates = [line['teacher_cache_hit_rate'] for line in scalars(work_dir)
             if 'teacher_cache_hit_rate' in line]
    assert len(rates) == 6  # 20 images per rank, batch 8: 3 iterations x 2 epochs
    if shared:
        assert rates[2] == 0.0 and rates[-1] == pytest.approx(0.5)
    else:
        assert 0.1 < rates[-1] < 0.45
    # shared: all 40 images; per rank: its 20 of epoch 1 and the epoch-2 ones it missed
    entries = 40 if shared else 20 + 20 - round(rates[-1] * 40)
    mib = [line['teacher_cache_mib'] for line in scalars(work_dir) if 'teacher_cache_mib' in line]
    assert mib[-1] == pytest.approx(entries * 10 * 4 / 2**20)
