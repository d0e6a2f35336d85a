"""Training-loop components: hooks, and launching on CPU-only machines."""
from .cpu_distributed import adapt_to_cpu_distributed
from .hooks import *  # noqa: F401,F403
