"""How a distiller reads comparable outputs from mmdet's one-stage dense detectors."""

from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModel
from torch import nn

from ..module_output_recorder import ModuleOutputRecorder, names_a_loss
from .batch_padding import check_teacher_takes_student_padding
from .dense_head_scores import PROBABILITIES, dense_head_scores


def flatten_levels(cls_scores: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Per-level class maps as one row per spatial position.

    Args:
        cls_scores: Per FPN level, shape (N, A·K, H_l, W_l) (A anchors per position, K classes).

    Returns:
        Per level, shape (N·H_l·W_l, A·K).
    """
    return [score.permute(0, 2, 3, 1).reshape(-1, score.shape[1]) for score in cls_scores]


# A probability this close to 0 or 1 is clamped before its logit is taken (float32-safe).
PROBABILITY_EPS = 1e-6


def as_logits(head, levels: List[torch.Tensor]) -> List[torch.Tensor]:
    """A head's flattened class maps as logits, so that the losses' sigmoid gives back the
    scores the head predicts with: unchanged for logit heads, ``logit(p)`` for heads whose maps
    are probabilities (see :func:`~.dense_head_scores.dense_head_scores`).

    Args:
        head: The dense head that produced ``levels``.
        levels: Per level, (N·H·W, A·K).

    Returns:
        Per level, (N·H·W, A·K).
    """
    if dense_head_scores(head, 'bbox_head') != PROBABILITIES:
        return levels
    return [torch.logit(level.clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS)) for level in levels]


# Heads (exact classes; subclasses may change forward) whose class scores are ``cls_convs``
# followed by this conv, independent of the box branch.
CLASS_BRANCH_CONVS = {'RetinaHead': 'retina_cls', 'FCOSHead': 'conv_cls', 'ATSSHead': 'atss_cls',
                      'GFLHead': 'gfl_cls'}


def class_branch_scores(head, features: Sequence[torch.Tensor]) -> Optional[List[torch.Tensor]]:
    """Per-level class maps computed by the head's class branch alone (no box branch), or None for a
    head not in :data:`CLASS_BRANCH_CONVS`.

    Args:
        head: A dense head.
        features: Per FPN level, (N, C, H_l, W_l).

    Returns:
        Per level, (N, A·K, H_l, W_l), equal to the first output of ``head(features)``.
    """
    final_conv = CLASS_BRANCH_CONVS.get(type(head).__name__)
    if final_conv is None:
        return None
    scores = []
    for level in features:
        for conv in head.cls_convs:
            level = conv(level)
        scores.append(getattr(head, final_conv)(level))
    return scores


def class_logits_of_features(head, features: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """A dense head's class maps on FPN features, as flattened logits: its class branch alone where
    :func:`class_branch_scores` knows it, else its whole forward's first output.

    Args:
        head: A dense head.
        features: Per FPN level, (N, C, H_l, W_l).

    Returns:
        Per level, (N·H_l·W_l, A·K).
    """
    scores = class_branch_scores(head, features)
    return as_logits(head, flatten_levels(head(features)[0] if scores is None else scores))


@contextmanager
def training_outputs(head: nn.Module) -> Iterator[None]:
    """Within the context, ``head``'s own forward returns what it returns in training, while its
    submodules keep their mode (a frozen teacher's norms stay in eval mode).

    Heads whose forward reads ``self.training`` return other outputs in eval mode: FCOS with
    ``norm_on_bbox`` scales its box maps by the stride, VFNet and RepPoints return fewer or decoded
    maps; their ``loss_by_feat`` takes the training outputs.
    """
    mode = head.training
    head.training = True
    try:
        yield
    finally:
        head.training = mode


def _head_layout(detector: BaseModel) -> dict:
    head = detector.bbox_head
    prior_generator = getattr(head, 'prior_generator', None)
    return dict(
        num_classes=head.num_classes,
        priors_per_position=getattr(head, 'num_base_priors', 1),
        class_channels=getattr(head, 'cls_out_channels', None),
        strides=[tuple(s) if isinstance(s, (tuple, list)) else (s, s)
                 for s in getattr(prior_generator, 'strides', [])])


class DenseHeadAdapter:
    """Class scores of one-stage detectors (RetinaNet, FCOS, ATSS, GFL, ...).

    The student's scores are the first output of its ``bbox_head`` forward (the per-level class
    maps), recorded while its stock ``loss()`` runs; the teacher's come from its backbone, neck and
    the head's class branch only (see :func:`class_branch_scores`; other heads run their whole
    forward), with no box branch, label assignment, loss or box decoding. Both are flattened to one
    row per spatial position and FPN level (see :func:`flatten_levels`); losses are computed per
    level and summed. Heads whose maps are probabilities (CenterNet, TOOD) are compared through the
    logits of those probabilities (see :func:`as_logits`), so that the sigmoid losses see what the
    head predicts with; heads whose kind is not known are refused at build time (see
    :mod:`~.dense_head_scores`).
    """

    task = 'one-stage detection (mmdet dense heads)'
    teacher_logits_per_sample = True  # sample-major rows per level: cacheable
    teacher_inputs_resizable = False  # the maps must keep the student's geometry
    image_classification = False
    teacher_bf16_refusal = ''
    hybrid_task_losses_refusal = ''
    compares_boxes = False

    @staticmethod
    def supports(model: BaseModel) -> bool:
        """Whether ``model`` is an mmdet one-stage detector."""
        try:
            from mmdet.models.detectors import SingleStageDetector
        except ImportError:  # mmdet is optional: without it nothing is a detector
            return False
        return isinstance(model, SingleStageDetector)

    teacher_computes = ('backbone, neck and bbox_head (for RetinaNet, FCOS, ATSS and GFL '
                        'heads only their class branch: cls_convs and the final class conv)')

    @staticmethod
    def recorded_modules(student: BaseModel) -> Tuple[str, ...]:
        """The student modules whose outputs hold its logits."""
        return ('bbox_head', )

    @staticmethod
    def teacher_runs(teacher: BaseModel, student: BaseModel, module_name: str) -> bool:
        """Whether the teacher's forward for distillation runs the module ``module_name``."""
        if names_a_loss(module_name):
            return False
        if module_name != 'bbox_head' and not module_name.startswith('bbox_head.'):
            return True
        final_conv = CLASS_BRANCH_CONVS.get(type(teacher.bbox_head).__name__)
        if final_conv is None:  # the whole head runs
            return True
        return module_name.startswith(('bbox_head.cls_convs', f'bbox_head.{final_conv}'))

    @classmethod
    def check_pair(cls, student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Teacher and student must share the head design (classes, anchors per position, class
        channels and FPN strides), each head's class maps must be known logits or probabilities (see
        :func:`~.dense_head_scores.dense_head_scores`), and the teacher must take the student's
        batch padding (see :func:`~.batch_padding.check_teacher_takes_student_padding`).

        Raises:
            TypeError: the teacher is not a one-stage detector.
            ValueError: the head designs differ (the message names what differs), a head's
                class maps cannot be compared, or the padding does not suit the teacher.
        """
        if not cls.supports(teacher):
            raise TypeError(f'{field}.config: the student is a one-stage detector but the '
                            f'teacher is a {type(teacher).__name__}; distilling dense class '
                            'scores needs a one-stage teacher with the same head design')
        dense_head_scores(student.bbox_head, 'model.student.bbox_head')
        dense_head_scores(teacher.bbox_head, f'{field}.config (its bbox_head)')
        student_layout, teacher_layout = _head_layout(student), _head_layout(teacher)
        differences = [f'{key}: teacher {teacher_layout[key]} vs student {student_layout[key]}'
                       for key in student_layout if student_layout[key] != teacher_layout[key]]
        if differences:
            raise ValueError(f'{field}: teacher and student heads differ ('
                             + '; '.join(differences) + '); their class maps cannot be compared')
        check_teacher_takes_student_padding(student, teacher, field)

    @staticmethod
    def student_logits(student_calls: ModuleOutputRecorder) -> List[torch.Tensor]:
        """Per level, shape (N·H·W, A·K)."""
        return as_logits(student_calls.model.bbox_head,
                         flatten_levels(student_calls.outputs['bbox_head'][0]))

    @staticmethod
    def paired_outputs(student_calls: ModuleOutputRecorder, student_outputs: dict,
                       teacher_outputs: dict) -> Tuple[dict, dict]:
        """The outputs as they are: the student's do not depend on the teacher."""
        return student_outputs, teacher_outputs

    @staticmethod
    def teacher_logits(teacher: BaseModel, inputs: torch.Tensor,
                       student_calls: ModuleOutputRecorder,
                       data_samples: Optional[list]) -> List[torch.Tensor]:
        """Per level, shape (N·H·W, A·K)."""
        return class_logits_of_features(teacher.bbox_head, teacher.extract_feat(inputs))

    @staticmethod
    def check_hybrid_pair(student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Block-wise hybrids take any pair that :meth:`check_pair` accepts."""

    @staticmethod
    def record_student_step(student: BaseModel) -> ContextManager[dict]:
        """What a hybrid needs from the student's step besides its outputs: nothing (the hybrids'
        heads assign their own targets)."""
        return nullcontext({})

    @staticmethod
    def probe_records(model: BaseModel, probe: torch.Tensor) -> None:
        """None: :meth:`head_forward` takes no records on the build-time probe image."""
        return None

    @staticmethod
    def head_forward(model: BaseModel, backbone_outputs: tuple,
                     records: Optional[dict] = None) -> Tuple[list, ...]:
        """``model``'s neck and ``bbox_head`` forward on given backbone outputs (a block-wise
        hybrid): per-level class maps, box maps (and any other per-level outputs), as the head
        returns them in training (:func:`training_outputs`), for its ``loss_by_feat``; ``records``
        is unused (see :meth:`record_student_step`)."""
        features = model.neck(backbone_outputs) if model.with_neck else backbone_outputs
        with training_outputs(model.bbox_head):
            return model.bbox_head(features)

    @staticmethod
    def head_logits(model: BaseModel, head_outputs: Tuple[list, ...]) -> List[torch.Tensor]:
        """Class scores of :meth:`head_forward`'s result (of ``model``'s head), per level (N·H·W,
        A·K)."""
        return as_logits(model.bbox_head, flatten_levels(head_outputs[0]))

    @staticmethod
    def head_class_logits(model: BaseModel, backbone_outputs: tuple,
                          records: Optional[dict] = None) -> List[torch.Tensor]:
        """``model``'s neck, then its head's class branch only (see
        :func:`class_logits_of_features`), on given backbone outputs: per level (N·H·W, A·K)."""
        features = model.neck(backbone_outputs) if model.with_neck else backbone_outputs
        return class_logits_of_features(model.bbox_head, features)

    @staticmethod
    def head_task_losses(model: BaseModel, head_outputs: Tuple[list, ...], data_samples: list,
                         records: Optional[dict] = None) -> dict:
        """``model``'s ``bbox_head`` losses (its own assigner and losses) on :meth:`head_forward`'s
        outputs, as its ``loss()`` computes them."""
        from mmdet.models.utils import unpack_gt_instances
        gt_instances, gt_instances_ignore, img_metas = unpack_gt_instances(data_samples)
        return model.bbox_head.loss_by_feat(*head_outputs, gt_instances, img_metas,
                                            gt_instances_ignore)
