"""RandomStateHook restores a checkpoint's random states on resume only, after mmengine's own re-
seeding, and refuses states of another number of processes."""

import logging
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmkd_plugins.engine import RandomStateHook
from mmkd_plugins.utils import current_random_states, restore_random_states


def runner(resume: bool, world_size: int = 1):
    """What the hook reads of a runner with an epoch-based loop and no dataloader workers."""
    loader = SimpleNamespace(persistent_workers=False, num_workers=0)
    return SimpleNamespace(_resume=resume, hooks=[], world_size=world_size, rank=0, seed=0,
                           train_loop=SimpleNamespace(dataloader=loader),
                           logger=logging.getLogger('test_random_state_hook'))


def saved_states_then_reseed():
    """States of a 'checkpoint', then what mmengine's resume does: re-seed everything."""
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    saved = current_random_states()
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    return saved


def next_draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_resume_continues_the_saved_streams_after_mmengines_reseed():
    saved = saved_states_then_reseed()
    hook = RandomStateHook()
    hook.after_load_checkpoint(runner(resume=True), {'rng_states': [saved]})
    torch.manual_seed(0), np.random.seed(0), random.seed(0)  # Runner.resume re-seeds here
    hook.before_train(runner(resume=True))
    got = next_draws()
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    assert got == next_draws()


def test_load_from_without_resume_keeps_this_runs_own_streams():
    saved = saved_states_then_reseed()
    hook = RandomStateHook()
    hook.after_load_checkpoint(runner(resume=False), {'rng_states': [saved]})
    hook.before_train(runner(resume=False))
    got = next_draws()
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    assert got == next_draws()


def test_states_of_another_number_of_processes_are_not_restored(caplog):
    saved = saved_states_then_reseed()
    hook = RandomStateHook()
    hook.after_load_checkpoint(runner(resume=True, world_size=2), {'rng_states': [saved]})
    with caplog.at_level(logging.WARNING, logger='test_random_state_hook'):
        hook.before_train(runner(resume=True, world_size=2))
    assert 'holds the random states of 1 processes and this run has 2' in caplog.text
    got = next_draws()
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    assert got == next_draws()


class FakeCudaGenerators:
    """Two visible devices, each with its own generator state; the process uses device 1 (one GPU
    per process seen through all of a node's devices, as torchrun leaves it)."""

    def __init__(self) -> None:
        self.states = [torch.tensor([0], dtype=torch.uint8), torch.tensor([1], dtype=torch.uint8)]
        self.current = 1

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
        monkeypatch.setattr(torch.cuda, 'is_initialized', lambda: True)
        monkeypatch.setattr(torch.cuda, 'get_rng_state', lambda: self.states[self.current])
        monkeypatch.setattr(torch.cuda, 'set_rng_state', self.set_rng_state)

    def set_rng_state(self, state: torch.Tensor) -> None:
        self.states[self.current] = state


def test_only_the_current_cuda_devices_state_is_saved_and_restored(monkeypatch):
    """A resume that sees another number of devices per process (torchrun one way, srun the other)
    restores the state of the device the process runs on, without an IndexError."""
    saving = FakeCudaGenerators()
    saving.install(monkeypatch)
    saved = current_random_states()
    assert torch.equal(saved['cuda'], torch.tensor([1], dtype=torch.uint8))
    resuming = FakeCudaGenerators()  # now the process sees only its own device, as device 0
    resuming.states, resuming.current = [torch.tensor([7], dtype=torch.uint8)], 0
    resuming.install(monkeypatch)
    restore_random_states(saved)
    assert torch.equal(resuming.states[0], torch.tensor([1], dtype=torch.uint8))


def test_the_cuda_generator_continues_after_a_restore():
    """On a CUDA machine: the restored state gives the draws that followed the saved one."""
    if not torch.cuda.is_available():
        pytest.skip('no CUDA device')
    torch.zeros(1, device='cuda')  # initialise CUDA
    saved = current_random_states()
    expected = torch.rand(3, device='cuda')
    torch.cuda.manual_seed(0)
    restore_random_states(saved)
    assert torch.equal(torch.rand(3, device='cuda'), expected)
