"""Models: distillers, losses, teacher loading, task adapters and block-wise hybrids."""

from .blockwise import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .module_output_recorder import ModuleOutputRecorder, check_module_names  # noqa: F401
from .task_adapters import *  # noqa: F401,F403
from .teachers import *  # noqa: F401,F403
