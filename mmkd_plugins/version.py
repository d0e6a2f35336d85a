"""Version of mmkd_plugins and the host-library versions it was tested with."""
__version__ = '0.1.0'

# The stack the test suite runs on; other versions are used with a warning, never refused.
TESTED_VERSIONS = {
    'torch': '2.14.1',
    'mmengine': '0.10.7',
    'mmcv': '2.1.0',
    'mmpretrain': '1.2.0',
    'mmdet': '3.3.0',
}
