"""A process's random number generator states: taken and set back as one value."""

import random

import numpy as np
import torch

RandomStates = dict  # python, numpy, torch and (when CUDA is in use) cuda: this process's


def current_random_states() -> RandomStates:
    """This process's Python, numpy and torch CPU generator states, and the CUDA generator's of its
    current device when CUDA is in use (another device's generator is another process's:

    the number of devices a process sees differs between launchers).
    """
    states = dict(python=random.getstate(), numpy=np.random.get_state(),
                  torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state()
    return states


def restore_random_states(states: RandomStates) -> None:
    """Set this process's generators to ``states`` (see :func:`current_random_states`)."""
    random.setstate(states['python'])
    np.random.set_state(states['numpy'])
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states['cuda'])
