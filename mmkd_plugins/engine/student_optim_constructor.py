"""The stock config's optimizer constructor, run on the student inside a distiller.

Stock configs may name an optimizer constructor that reads the model's parts and parameter names
(mmdet's ConvNeXt configs: ``LearningRateDecayOptimizerConstructor`` reads ``model.backbone`` and
matches ``backbone.stages.<i>.<j>...``). In a distiller the student's parameters are named
``student.backbone...``, so such a constructor fails or, worse, gives every parameter the same
learning rate. :class:`StudentOptimWrapperConstructor` runs the stock constructor on the student, as
in the stock training, and adds the distiller's own trained parameters (block-wise connectors,
learned temperatures) with the optimizer's settings;
:class:`~mmkd_plugins.engine.DistillationRunner` puts it in place by itself
(:func:`run_optim_constructor_on_student`).
"""

from typing import Dict, Optional, cast

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_CONSTRUCTORS

from ..models.distillers.student import HoldsStudent
from ..registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS, SCOPE

CONSTRUCTOR_TYPE = f'{SCOPE}.StudentOptimWrapperConstructor'
DEFAULT_CONSTRUCTOR = 'DefaultOptimWrapperConstructor'


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class StudentOptimWrapperConstructor:
    """Builds the optimizer of a distiller: ``student_constructor`` (any registered optimizer
    wrapper constructor, with the config's ``paramwise_cfg``) on ``model.student``, then one
    group of the distiller's other trainable parameters with the optimizer's own settings.

    Config::

        optim_wrapper = dict(constructor='mmkd_plugins.StudentOptimWrapperConstructor',
                             student_constructor='LearningRateDecayOptimizerConstructor',
                             paramwise_cfg=..., optimizer=...)

    Args:
        optim_wrapper_cfg: The ``optim_wrapper`` config without ``constructor`` and
            ``paramwise_cfg``; its ``student_constructor`` (default mmengine's
            ``DefaultOptimWrapperConstructor``) is taken out, the rest goes to it.
        paramwise_cfg: Given to the student's constructor.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        optim_wrapper_cfg = dict(optim_wrapper_cfg)
        student_constructor = optim_wrapper_cfg.pop('student_constructor', DEFAULT_CONSTRUCTOR)
        self.student_constructor = MMENGINE_CONSTRUCTORS.build(dict(
            type=student_constructor, optim_wrapper_cfg=optim_wrapper_cfg,
            paramwise_cfg=paramwise_cfg))

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """The optimizer wrapper of ``model`` (a distiller, possibly DDP-wrapped).

        Raises:
            TypeError: ``model`` has no ``student``.
        """
        model = cast(nn.Module, model.module) if is_model_wrapper(model) else model
        student = getattr(model, 'student', None)
        if not isinstance(student, nn.Module):
            raise TypeError(f'optim_wrapper.constructor: {CONSTRUCTOR_TYPE} builds the '
                            f'optimizer of a distiller, not of a {type(model).__name__}')
        optim_wrapper = self.student_constructor(student)
        own = {name: param for name, param in model.named_parameters()
               if not name.startswith('student.') and param.requires_grad}
        if own:
            group: Dict[str, list] = dict(params=list(own.values()))
            optimizer = optim_wrapper.optimizer
            if 'param_names' in optimizer.param_groups[0]:  # torch: all groups named, or none
                group['param_names'] = list(own)
            optimizer.add_param_group(group)
        return optim_wrapper


def is_distiller_type(model_type) -> bool:
    """Whether a config's ``model.type`` (a name, scope-prefixed or not, or a class) is one of this
    package's distillers."""
    if isinstance(model_type, str):
        model_type = MODELS.get(model_type)
    return isinstance(model_type, type) and issubclass(model_type, HoldsStudent)


def run_optim_constructor_on_student(cfg: Config) -> None:
    """Where a distillation config inherits an optimizer constructor of its own (not mmengine's
    default, which needs nothing), make it run on the student, in place: ``constructor`` becomes
    :class:`StudentOptimWrapperConstructor`, the stock one its ``student_constructor``.

    Configs of stock models, with several optimizers, or already set up, are left as they are.
    """
    optim_wrapper = cfg.get('optim_wrapper')
    if not is_distiller_type(cfg.get('model', {}).get('type')) or not optim_wrapper\
            or 'optimizer' not in optim_wrapper:
        return
    constructor = optim_wrapper.get('constructor', DEFAULT_CONSTRUCTOR)
    if constructor in (DEFAULT_CONSTRUCTOR, DefaultOptimWrapperConstructor, CONSTRUCTOR_TYPE,
                       StudentOptimWrapperConstructor):
        return
    optim_wrapper.student_constructor = constructor
    optim_wrapper.constructor = CONSTRUCTOR_TYPE
    print_log(f'optim_wrapper.constructor: {constructor} runs on model.student '
              f'({CONSTRUCTOR_TYPE})', logger='current')
