"""How a distiller reads comparable outputs from mmpretrain classifiers."""

from contextlib import nullcontext
from typing import ContextManager, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModel

from ..module_output_recorder import ModuleOutputRecorder, names_a_loss
from ..teachers.huggingface_teachers import huggingface_num_classes
from ..teachers.timm_teachers import timm_num_classes


def check_class_index_map(class_index_map: Sequence[int], student_classes: Optional[int],
                          teacher_classes: Optional[int], field: str) -> None:
    """A map of one teacher class per student class: as many entries as the student has classes,
    distinct teacher classes in range.

    Raises:
        ValueError: naming ``field`` and what is wrong.
    """
    if not all(isinstance(index, int) and not isinstance(index, bool)
               for index in class_index_map):
        raise ValueError(f'{field}: expected a list of teacher class indices (ints)')
    if student_classes is not None and len(class_index_map) != student_classes:
        raise ValueError(f'{field}: {len(class_index_map)} entries for a student of '
                         f'{student_classes} classes; one teacher class per student class')
    if teacher_classes is not None:
        outside = [index for index in class_index_map if not 0 <= index < teacher_classes]
        if outside:
            raise ValueError(f'{field}: teacher classes {outside[:5]} are outside the '
                             f"teacher's {teacher_classes} classes")
    if len(set(class_index_map)) != len(class_index_map):
        repeated = sorted({index for index in class_index_map
                           if list(class_index_map).count(index) > 1})
        raise ValueError(f'{field}: teacher classes {repeated[:5]} are given to several '
                         'student classes; each student class needs its own')


class ClassifierAdapter:
    """Logits of mmpretrain ``ImageClassifier``-style models (backbone, optional neck, head).

    The student's logits are the output of its ``head`` module, recorded while its stock ``loss()``
    runs (for a head with a distillation classifier, that classifier's logits, see
    :mod:`.two_classifier_heads`); the teacher's are ``teacher(inputs, mode='tensor')``, which runs
    backbone, neck and the head's forward only (a two-classifier teacher: the mean of its
    classifiers, its stock prediction): no loss, no post-processing.
    """

    task = 'classification (mmpretrain classifiers)'
    teacher_logits_per_sample = True  # row b depends on sample b only: cacheable
    teacher_inputs_resizable = True  # a teacher built for another size gets it
    image_classification = True
    teacher_bf16_refusal = ''
    hybrid_task_losses_refusal = ''
    compares_boxes = False

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

    @staticmethod
    def class_counts(student: BaseModel, teacher: BaseModel) -> Tuple[Optional[int],
                                                                      Optional[int], str]:
        """The student's and the teacher's class counts (None where unknown), and where the
        teacher's is set in its config."""
        student_classes = getattr(student.head, 'num_classes', None)
        teacher_classes = getattr(getattr(teacher, 'head', None), 'num_classes', None)
        where = 'model.head.num_classes'
        if teacher_classes is None and timm_num_classes(teacher) is not None:
            teacher_classes, where = timm_num_classes(teacher), 'model.num_classes, timm\'s'
        if teacher_classes is None and huggingface_num_classes(teacher) is not None:
            teacher_classes = huggingface_num_classes(teacher)
            where = "model config's num_labels, HuggingFace's"
        return student_classes, teacher_classes, where

    @classmethod
    def check_pair(cls, student: BaseModel, teacher: BaseModel, field: str,
                   class_index_map: Optional[Sequence[int]] = None) -> None:
        """Fail at build time when the teacher cannot teach this student.

        Args:
            student: The student classifier.
            teacher: The teacher.
            field: Where the teacher sits in the config.
            class_index_map: For each student class, the teacher class it is (a teacher of
                another label space), or None (the same classes).

        Raises:
            TypeError: the teacher is not a classifier.
            ValueError: the class counts differ without a map, or the map does not fit them.
        """
        from mmpretrain.models.classifiers import BaseClassifier
        if not isinstance(teacher, BaseClassifier):
            raise TypeError(f'{field}.config: the student is a classifier but the teacher is a '
                            f'{type(teacher).__name__}; a classification teacher (an mmpretrain '
                            'classifier: ImageClassifier, TimmClassifier, ...) is required')
        student_classes, teacher_classes, where = cls.class_counts(student, teacher)
        if class_index_map is not None:
            check_class_index_map(class_index_map, student_classes, teacher_classes,
                                  f'{field}.class_index_map')
            return
        if None not in (student_classes, teacher_classes) and student_classes != teacher_classes:
            raise ValueError(
                f'{field}: the teacher predicts {teacher_classes} classes and the student '
                f'{student_classes} (the teacher\'s {where}, the student\'s '
                'model.head.num_classes); both must be equal, or a teacher of another label '
                'space (ImageNet-21k for a 1k student) needs '
                f'{field}.class_index_map: for each student class, its teacher class')

    @staticmethod
    def student_logits(student_calls: ModuleOutputRecorder) -> torch.Tensor:
        """The logits the student's head produced during ``loss()``, shape (B, C)."""
        return student_calls.outputs['head']

    @staticmethod
    def paired_outputs(student_calls: ModuleOutputRecorder, student_outputs: dict,
                       teacher_outputs: dict) -> Tuple[dict, dict]:
        """The outputs as they are: the student's do not depend on the teacher."""
        return student_outputs, teacher_outputs

    @staticmethod
    def teacher_logits(teacher: BaseModel, inputs: torch.Tensor,
                       student_calls: ModuleOutputRecorder,
                       data_samples: Optional[list]) -> torch.Tensor:
        """The teacher's logits, shape (B, C), for the teacher-normalized inputs (B, 3, H, W)."""
        return teacher(inputs, mode='tensor')

    @staticmethod
    def check_hybrid_pair(student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Block-wise hybrids take any pair that :meth:`check_pair` accepts."""

    @staticmethod
    def record_student_step(student: BaseModel) -> ContextManager[dict]:
        """What a hybrid needs from the student's step besides its outputs: nothing."""
        return nullcontext({})

    @staticmethod
    def probe_records(model: BaseModel, probe: torch.Tensor) -> None:
        """None: :meth:`head_forward` takes no records on the build-time probe image."""
        return None

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
        """The comparable logits of :meth:`head_forward`'s result (of ``model``'s head), (B,
        num_classes)."""
        return head_outputs

    @classmethod
    def head_class_logits(cls, model: BaseModel, backbone_outputs: tuple,
                          records: Optional[dict] = None) -> torch.Tensor:
        """The logits of :meth:`head_forward` (nothing of a classifier's head serves its loss
        alone), (B, num_classes)."""
        return cls.head_logits(model, cls.head_forward(model, backbone_outputs, records))

    @staticmethod
    def head_task_losses(model: BaseModel, head_outputs: torch.Tensor, data_samples: list,
                         records: Optional[dict] = None) -> dict:
        """``model``'s head loss (as configured in its config) on :meth:`head_forward`'s logits."""
        return model.head._get_loss(head_outputs, data_samples)

