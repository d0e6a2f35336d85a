"""A run killed while saving loses nothing: checkpoints and ``last_checkpoint`` are written
atomically, old checkpoints are removed only after the new one is complete, and files honour the
umask.

Real runners on the demo KD config, with ``os.replace`` failing at a chosen file.
"""

import os
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmkd_plugins.checkpoint import atomic_write_bytes, safe_torch_load
from ..conftest import KD_CONFIG, data_options


def kd_runner(digits_root, teacher_checkpoint, work_dir, epochs=2, **options) -> Runner:
    """A runner of the demo KD config checkpointing every epoch (keeping 1); ``options`` override
    the config (``resume=True`` resumes from ``work_dir``'s last checkpoint)."""
    cfg = Config.fromfile(KD_CONFIG)
    cfg.merge_from_dict({
        **data_options(digits_root), 'model.teacher.checkpoint': teacher_checkpoint,
        'train_cfg.max_epochs': epochs, 'train_cfg.val_interval': epochs,
        'default_hooks.checkpoint.interval': 1, 'default_hooks.checkpoint.max_keep_ckpts': 1,
        'randomness.seed': 0, **options})
    cfg.work_dir = str(work_dir)
    return RUNNERS.build(cfg)  # as the stock train scripts: the config's DistillationRunner


def fail_replacing(monkeypatch, basename: str) -> None:
    """``os.replace`` raises (a kill) when it would complete the write of ``basename``."""
    replace = os.replace

    def killed_at(src, dst):
        if osp.basename(dst) == basename:
            raise KeyboardInterrupt(f'killed while saving {basename}')
        replace(src, dst)

    monkeypatch.setattr(os, 'replace', killed_at)


def recorded_checkpoint(work_dir) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as file:
        return file.read()


def test_killed_while_writing_the_new_checkpoint_keeps_the_only_old_one(
        digits_root, teacher_checkpoint, tmp_path, monkeypatch):
    """``max_keep_ckpts=1``: mmengine's own hook deletes epoch_1.pth before writing epoch_2.pth, so
    a kill then leaves no checkpoint at all."""
    runner = kd_runner(digits_root, teacher_checkpoint, tmp_path)
    fail_replacing(monkeypatch, 'epoch_2.pth')
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert sorted(name for name in os.listdir(tmp_path) if name.endswith('.pth')) == [
        'epoch_1.pth']
    assert recorded_checkpoint(tmp_path) == osp.join(str(tmp_path), 'epoch_1.pth')
    assert safe_torch_load(str(tmp_path / 'epoch_1.pth'))['meta']['epoch'] == 1


def test_killed_while_recording_the_last_checkpoint_keeps_a_complete_record(
        digits_root, teacher_checkpoint, tmp_path, monkeypatch):
    runner = kd_runner(digits_root, teacher_checkpoint, tmp_path)
    replace = os.replace
    calls = []

    def killed_at_second_record(src, dst):
        if osp.basename(dst) == 'last_checkpoint':
            calls.append(dst)
            if len(calls) == 2:
                raise KeyboardInterrupt('killed while recording epoch 2')
        replace(src, dst)

    monkeypatch.setattr(os, 'replace', killed_at_second_record)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert recorded_checkpoint(tmp_path) == osp.join(str(tmp_path), 'epoch_1.pth')
    assert osp.isfile(tmp_path / 'epoch_1.pth')  # still resumable from the record
    assert safe_torch_load(str(tmp_path / 'epoch_2.pth'))['meta']['epoch'] == 2  # complete


def test_written_files_honour_the_umask(digits_root, teacher_checkpoint, tmp_path):
    previous = os.umask(0o027)
    try:
        kd_runner(digits_root, teacher_checkpoint, tmp_path, epochs=1).train()
        atomic_write_bytes(tmp_path / 'plain.bin', b'data')
    finally:
        os.umask(previous)
    for name in ('epoch_1.pth', 'last_checkpoint', 'student_final.pth', 'plain.bin'):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o640, name


def test_a_resumed_run_keeps_max_keep_ckpts_checkpoints(digits_root, teacher_checkpoint,
                                                        tmp_path):
    """The kept list a checkpoint holds includes its own step (as mmengine records it): run to epoch
    3 and resume to 6 with ``max_keep_ckpts=2`` and epochs 5 and 6 remain (epochs 3, 5 and 6 did
    before)."""
    keep_two = {'default_hooks.checkpoint.max_keep_ckpts': 2}
    kd_runner(digits_root, teacher_checkpoint, tmp_path, epochs=3, **keep_two).train()
    assert safe_torch_load(str(tmp_path / 'epoch_3.pth'))['message_hub']['runtime_info'][
        'keep_ckpt_ids'] == [2, 3]
    kd_runner(digits_root, teacher_checkpoint, tmp_path, epochs=6, resume=True,
              **keep_two).train()
    assert sorted(name for name in os.listdir(tmp_path) if name.startswith('epoch_')) == [
        'epoch_5.pth', 'epoch_6.pth']
