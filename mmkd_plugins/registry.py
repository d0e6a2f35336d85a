"""Registries of mmkd_plugins.

Every type of this package lives in a child registry of mmengine's root registry with the scope
``mmkd_plugins``. A config of any host package (``default_scope='mmpretrain'`` or ``'mmdet'``)
reaches them with the scope prefix, e.g. ``type='mmkd_plugins.Distiller'``, so no name of ours can
shadow a host package's type of the same name, or be shadowed by one.

Inside a distiller, the losses named in ``distill_losses`` are looked up here first (see
:func:`mmkd_plugins.models.distillers.distiller.build_distill_loss`).
"""

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

SCOPE = 'mmkd_plugins'

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope=SCOPE, locations=['mmkd_plugins.models'])
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, scope=SCOPE, locations=['mmkd_plugins.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE,
    locations=['mmkd_plugins.engine'])
RUNNERS = Registry(
    'runner', parent=MMENGINE_RUNNERS, scope=SCOPE, locations=['mmkd_plugins.engine'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, scope=SCOPE, locations=['mmkd_plugins.soft_labels'])
