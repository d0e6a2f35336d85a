"""Version of mmkd_plugins and the host-library versions it was tested with."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from typing import List

__version__ = '0.1.0'

# The stack the test suite runs on; other versions are used with a warning, never refused.
TESTED_VERSIONS = {
    'torch': '2.14.1',
    'mmengine': '0.10.7',
    'mmcv': '2.1.0',
    'mmpretrain': '1.2.0',
    'mmdet': '3.3.0',
}


def untested_versions() -> List[str]:
    """One message per installed host library whose version differs from
    :data:`TESTED_VERSIONS` (libraries installed under another distribution name, such as the
    OneDL forks, are not compared)."""
    messages = []
    for package, tested in TESTED_VERSIONS.items():
        try:
            installed = installed_version(package)
        except PackageNotFoundError:
            continue
        if installed.split('+')[0] != tested:
            messages.append(f'mmkd_plugins was tested with {package}=={tested}; '
                            f'{installed} is installed')
    return messages
