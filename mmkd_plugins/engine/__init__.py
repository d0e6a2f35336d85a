"""Training-loop components: hooks, and launching on CPU-only machines."""
from .cpu_distributed import setup_cpu_distributed
from .hooks import *  # noqa: F401,F403
