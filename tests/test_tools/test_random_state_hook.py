"""RandomStateHook restores a checkpoint's random states on resume only, after mmengine's own
re-seeding, and refuses states of another number of processes."""
import logging
import random
from types import SimpleNamespace

import numpy as np
import torch

from mmkd_plugins.engine import RandomStateHook
from mmkd_plugins.engine.hooks.random_state_hook import current_random_states


def runner(resume: bool, world_size: int = 1):
    return SimpleNamespace(_resume=resume, hooks=[], world_size=world_size, rank=0,
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
