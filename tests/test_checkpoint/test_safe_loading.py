"""Weights-only checkpoint loading with the exact allow-list."""

import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmkd_plugins.checkpoint import (UnsafeCheckpointError, register_weights_only_loaders,
                                     safe_torch_load)
from ..support.checkpoints import RunsCodeWhenUnpickled


def test_mmengine_style_checkpoint_loads_with_weights_only(tmp_path):
    history = HistoryBuffer()
    history.update(0.5)
    checkpoint = {
        'state_dict': {'w': torch.ones(2)},
        'meta': {'epoch': 3, 'seed': np.int64(7)},
        'message_hub': {'log_scalars': {'train/loss': history},
                        'runtime_info': {'arr': np.arange(3, dtype=np.float32)}},
    }
    path = str(tmp_path / 'ckpt.pth')
    torch.save(checkpoint, path)
    loaded = safe_torch_load(path)
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 0.5
    np.testing.assert_array_equal(loaded['message_hub']['runtime_info']['arr'], np.arange(3))
    register_weights_only_loaders()
    through_mmengine = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert through_mmengine['meta']['seed'] == 7


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'payload': RunsCodeWhenUnpickled(str(marker))}, path)
    with pytest.raises(UnsafeCheckpointError, match='refused to load'):
        safe_torch_load(path)
    register_weights_only_loaders()
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert not os.path.exists(marker)


def test_missing_file_is_reported():
    with pytest.raises(FileNotFoundError, match='not found'):
        safe_torch_load('/nonexistent/ckpt.pth')


class ReachesAnAttribute:
    """A pickle that calls ``getattr`` on something other than HistoryBuffer's statistics."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def test_getattr_is_allowed_only_for_history_buffer_statistics(tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': ReachesAnAttribute()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"getattr\(HistoryBuffer, '__init__'\)"):
        safe_torch_load(path)
