"""How a distiller reads comparable outputs from mmpretrain classifiers."""
from contextlib import nullcontext
from typing import ContextManager, Optional, Tuple

import torch
from mmengine.model import BaseModel

from ..module_output_recorder import ModuleOutputRecorder, names_a_loss
from ..teachers.timm_teachers import timm_num_classes


class ClassifierAdapter:
    """Logits of mmpretrain ``ImageClassifier``-style models (backbone, optional neck, head).

    The student's logits are the output of its ``head`` module, recorded while its stock
    ``loss()`` runs (for a head with a distillation classifier, that classifier's logits, see
    :mod:`.two_classifier_heads`); the teacher's are ``teacher(inputs, mode='tensor')``, which
    runs backbone, neck and the head's forward only (a two-classifier teacher: the mean of its
    classifiers, its stock prediction): no loss, no post-processing.
    """

    task = 'classification (mmpretrain classifiers)'
    supports_hybrids = True
    teacher_logits_per_sample = True  # row b depends on sample b only: cacheable
    teacher_inputs_resizable = True  # a teacher built for another size gets it

    @staticmethod
    def supports(model: BaseModel) -> bool:
        """Whether ``model`` is a classifier with a head."""
        from mmpretrain.models.classifiers import BaseClassifier
        return isinstance(model, BaseClassifier) and getattr(model, 'head', None) is not None

    teacher_computes = "backbone, neck and head forward (mode='tensor'), no loss"

    @staticmethod
    def recorded_modules(student: BaseModel) -> Tuple[str, ...]:
        """The student modules whose outputs hold its logits."""
        return ('head', )

    @staticmethod
    def teacher_runs(teacher: BaseModel, student: BaseModel, module_name: str) -> bool:
        """Whether the teacher's forward for distillation runs the module ``module_name``."""
        return not names_a_loss(module_name)

    @classmethod
    def check_pair(cls, student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Fail at build time when the teacher cannot teach this student.

        Raises:
            TypeError: the teacher is not a classifier.
            ValueError: the class counts differ.
        """
        from mmpretrain.models.classifiers import BaseClassifier
        if not isinstance(teacher, BaseClassifier):
            raise TypeError(f'{field}.config: the student is a classifier but the teacher is a '
                            f'{type(teacher).__name__}; a classification teacher (an mmpretrain '
                            'classifier: ImageClassifier, TimmClassifier, ...) is required')
        student_classes = getattr(student.head, 'num_classes', None)
        teacher_classes = getattr(getattr(teacher, 'head', None), 'num_classes', None)
        where = 'model.head.num_classes'
        if teacher_classes is None:
            teacher_classes, where = timm_num_classes(teacher), 'model.num_classes, timm\'s'
        if None not in (student_classes, teacher_classes) and student_classes != teacher_classes:
            raise ValueError(
                f'{field}: the teacher predicts {teacher_classes} classes and the student '
                f'{student_classes} (the teacher\'s {where}, the student\'s '
                'model.head.num_classes); both must be equal: a '
                'teacher of another label space (ImageNet-21k for a 1k student) cannot be '
                'distilled class by class')

    @staticmethod
    def student_logits(student_calls: ModuleOutputRecorder) -> torch.Tensor:
        """The logits the student's head produced during ``loss()``, shape (B, C)."""
        return student_calls.outputs['head']

    @staticmethod
    def teacher_logits(teacher: BaseModel, inputs: torch.Tensor,
                       student_calls: ModuleOutputRecorder) -> torch.Tensor:
        """Args: inputs (B, 3, H, W), teacher-normalized. Returns: logits (B, C)."""
        return teacher(inputs, mode='tensor')

    @staticmethod
    def check_hybrid_pair(student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Block-wise hybrids take any pair that :meth:`check_pair` accepts."""

    @staticmethod
    def record_student_step(student: BaseModel) -> ContextManager[dict]:
        """What a hybrid needs from the student's step besides its outputs: nothing."""
        return nullcontext({})

    @staticmethod
    def head_forward(model: BaseModel, backbone_outputs: tuple,
                     records: Optional[dict] = None) -> torch.Tensor:
        """``model``'s neck and head forward on given backbone outputs (a block-wise hybrid).

        Args:
            backbone_outputs: What ``model.backbone`` would return, e.g. ((B, C, H, W), ).
            records: Unused (see :meth:`record_student_step`).

        Returns:
            Logits, shape (B, num_classes).
        """
        features = model.neck(backbone_outputs) if model.with_neck else backbone_outputs
        return model.head(features)

    @staticmethod
    def head_logits(model: BaseModel, head_outputs: torch.Tensor) -> torch.Tensor:
        """The comparable logits of :meth:`head_forward`'s result (of ``model``'s head),
        (B, num_classes)."""
        return head_outputs

    @staticmethod
    def head_task_losses(model: BaseModel, head_outputs: torch.Tensor, data_samples: list,
                         records: Optional[dict] = None) -> dict:
        """``model``'s head loss (as configured in its config) on :meth:`head_forward`'s
        logits."""
        return model.head._get_loss(head_outputs, data_samples)

