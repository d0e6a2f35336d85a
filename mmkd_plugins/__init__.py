"""mmkd_plugins: knowledge distillation for mmpretrain classifiers and mmdet detectors.

Importing the package (done by mmengine itself when a config names a type with the
``mmkd_plugins.`` scope prefix, or by ``custom_imports``) registers every type under the
``mmkd_plugins`` scope, makes mmengine load checkpoints with
``weights_only=True`` and an exact allow-list of safe globals, and makes its local file writes
(checkpoints) atomic.
"""
import warnings
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version

from .checkpoint import register_atomic_local_backend, register_weights_only_loaders
from .version import TESTED_VERSIONS, __version__


def _warn_about_untested_versions() -> None:
    for package, tested in TESTED_VERSIONS.items():
        try:
            installed = installed_version(package)
        except PackageNotFoundError:
            continue
        if installed.split('+')[0] != tested:
            warnings.warn(f'mmkd_plugins was tested with {package}=={tested}; '
                          f'{installed} is installed', stacklevel=2)


_warn_about_untested_versions()
register_weights_only_loaders()
register_atomic_local_backend()

from . import engine, models, soft_labels  # noqa: E402,F401  (importing registers the types)

__all__ = ['__version__']
