"""mmkd_plugins: knowledge distillation for mmpretrain classifiers and mmdet detectors.

Importing the package (done by mmengine itself when a config names a type with the ``mmkd_plugins.``
scope prefix, or by ``custom_imports``) registers every type under the ``mmkd_plugins`` scope and
changes nothing else. What a distillation run needs from mmengine beyond that (weights-only
checkpoint loading, atomic checkpoint writes) is set up by the config's runner,
:class:`~mmkd_plugins.engine.DistillationRunner`.
"""

from . import datasets, engine, models, soft_labels  # noqa: F401  (importing registers the types)
from .version import __version__

__all__ = ['__version__']
