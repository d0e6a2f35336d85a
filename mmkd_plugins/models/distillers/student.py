"""The student inside a distiller: built from the stock config's ``model``, and answering for the
parts that code written for stock models reads from the model."""

import copy
from typing import TYPE_CHECKING, Optional, Tuple, Union

from mmengine.model import BaseModel
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import nn


def build_student(student: Union[dict, BaseModel],
                  data_preprocessor: Optional[dict]) -> BaseModel:
    """The student model, built from its config if needed; the runner's top-level
    ``data_preprocessor`` (mmpretrain's style) is its default preprocessor.

    The config is copied whole first: some models complete their sub-configs in place (DETR-family
    detectors set their ``bbox_head``'s layer counts), which would otherwise land in the run's
    config and from there in the exported student config, where the stock model refuses them.
    """
    if isinstance(student, dict):
        student = copy.deepcopy(student)
        if data_preprocessor is not None:
            student.setdefault('data_preprocessor', data_preprocessor)
        student = MMENGINE_MODELS.build(student)
    return student


# Parts of a student that code written for stock models reads from the model (optimizer
# constructors, hooks); a distiller answers for them with where the student's part is.
STUDENT_PARTS = ('backbone', 'neck', 'head', 'bbox_head', 'rpn_head', 'roi_head')

if TYPE_CHECKING:  # a mixin of nn.Module subclasses: their nn.Module is its super()
    _ModuleMixinBase = nn.Module
else:
    _ModuleMixinBase = object


class HoldsStudent(_ModuleMixinBase):
    """Mixin for distillers (``nn.Module`` subclasses with a ``student``): asking the distiller for
    a part of the student (``model.backbone``) raises an ``AttributeError`` that says where the part
    is and how to run a stock optimizer constructor on the student, instead of ``nn.Module``'s bare
    "has no attribute"; :meth:`get_layer_depth` answers for the student (mmpretrain's layer-wise
    learning-rate decay)."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            student = self.__dict__.get('_modules', {}).get('student')
            if name not in STUDENT_PARTS or not hasattr(student, name):
                raise
            raise AttributeError(
                f"model.{name}: a {type(self).__name__} holds the student's at "
                f'model.student.{name}; code that reads model.{name} must run on the student. '
                'An optimizer constructor of the stock config (optim_wrapper.constructor) runs '
                "on it with optim_wrapper.constructor='mmkd_plugins.StudentOptimWrapperConstructor'"
                " and student_constructor='<the stock constructor>' (runner_type="
                "'mmkd_plugins.DistillationRunner' sets this by itself)") from None

    def get_layer_depth(self, param_name: str) -> Tuple[int, int]:
        """A parameter's layer depth and the number of depths, for mmpretrain's layer-wise learning-
        rate decay (``LearningRateDecayOptimWrapperConstructor``, used by the BEiT, MAE, CAE, EVA
        fine-tuning configs): the student's own answer for ``student.*``; the distiller's own
        parameters (connectors, learned temperatures) are not in the student's backbone and so count
        as its last depth, as its head does (learning-rate scale 1).

        Args:
            param_name: The parameter's name in the distiller, e.g.
                ``'student.backbone.layers.3.attn.qkv.weight'``.

        Raises:
            NotImplementedError: the student has no ``get_layer_depth`` (not an mmpretrain
                classifier), naming the field.
        """
        if not hasattr(self.student, 'get_layer_depth'):
            raise NotImplementedError(
                f'model.student: layer-wise learning-rate decay (optim_wrapper.constructor) '
                f'needs a student with get_layer_depth(); a {type(self.student).__name__} has '
                'none')
        if param_name.startswith('student.'):
            param_name = param_name[len('student.'):]
        return self.student.get_layer_depth(param_name)
