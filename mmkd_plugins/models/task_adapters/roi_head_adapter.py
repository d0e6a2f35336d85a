"""How a distiller reads comparable outputs from mmdet's two-stage detectors."""
import torch
from mmengine.model import BaseModel

from ..module_output_recorder import ModuleOutputRecorder, names_a_loss
from ..teachers.teacher_precision import to_float32

ROI_EXTRACTOR = 'roi_head.bbox_roi_extractor'
BOX_HEAD = 'roi_head.bbox_head'


def _box_head(detector: BaseModel):
    """The (first stage's) box head of a standard or cascade RoI head."""
    head = detector.roi_head.bbox_head
    return head[0] if isinstance(head, torch.nn.ModuleList) else head


class RoIHeadAdapter:
    """RoI class logits of two-stage detectors (Faster R-CNN; Cascade R-CNN as teacher).

    The student's logits are its box head's class scores for its own sampled proposals,
    recorded while its stock ``loss()`` runs, together with those RoIs. The teacher then scores
    **the same RoIs**: its backbone and neck run on the batch, and its RoI extractor and (first
    cascade stage's) box head run on the student's RoIs. The teacher runs no RPN, sampling or
    loss, and its later cascade stages are unused. Logits are (num_rois, K + 1), background
    last, to be compared with a softmax.
    """

    task = 'two-stage detection (mmdet RoI heads)'
    recorded_modules = (ROI_EXTRACTOR, BOX_HEAD)
    supports_hybrids = False  # a hybrid would need its own RPN proposals and RoI sampling
    teacher_logits_per_sample = False  # they score the student's RoIs of this step
    teacher_inputs_resizable = False  # the RoIs are in the student's coordinates

    @staticmethod
    def supports(model: BaseModel) -> bool:
        """Whether ``model`` is an mmdet two-stage detector with a box RoI head."""
        try:
            from mmdet.models.detectors import TwoStageDetector
        except ImportError:  # mmdet is optional: without it nothing is a detector
            return False
        return (isinstance(model, TwoStageDetector) and model.with_roi_head
                and getattr(model.roi_head, 'with_bbox', False))

    teacher_computes = ("backbone, neck, and the (first stage's) RoI extractor and box head "
                        "on the student's RoIs; no RPN, mask head or later cascade stage")

    @staticmethod
    def teacher_runs(teacher: BaseModel, module_name: str) -> bool:
        """Whether the teacher's forward for distillation runs the module ``module_name``."""
        if names_a_loss(module_name):
            return False
        if module_name.startswith(('backbone', 'neck', 'data_preprocessor')):
            return True
        cascade = isinstance(teacher.roi_head.bbox_head, torch.nn.ModuleList)
        first_stage = ('.0', ) if cascade else ('', )
        return any(module_name == f'{part}{stage}' or module_name.startswith(f'{part}{stage}.')
                   for part in (ROI_EXTRACTOR, BOX_HEAD) for stage in first_stage)

    @classmethod
    def check_pair(cls, student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Raises ``TypeError`` for a student with several RoI stages (Cascade R-CNN) or a
        teacher that is not two-stage, ``ValueError`` for other class counts."""
        if isinstance(student.roi_head.bbox_head, torch.nn.ModuleList):
            raise TypeError(
                f'model.student: a {type(student).__name__} student has '
                f'{len(student.roi_head.bbox_head)} RoI stages; distilling a multi-stage RoI '
                'head is not supported (Faster R-CNN-style students with one box head are; a '
                'Cascade R-CNN can be the teacher)')
        if not cls.supports(teacher):
            raise TypeError(f'{field}.config: the student is a two-stage detector but the '
                            f'teacher is a {type(teacher).__name__}; scoring the student\'s '
                            'RoIs needs a two-stage teacher (Faster/Cascade R-CNN)')
        student_classes = _box_head(student).num_classes
        teacher_classes = _box_head(teacher).num_classes
        if student_classes != teacher_classes:
            raise ValueError(f'{field}: the teacher\'s RoI head predicts {teacher_classes} '
                             f'classes and the student\'s {student_classes}; both must be equal')

    @staticmethod
    def student_rois(student_calls: ModuleOutputRecorder) -> torch.Tensor:
        """The RoIs the student's box head scored, shape (num_rois, 5): batch index, box."""
        return student_calls.inputs[ROI_EXTRACTOR][1]

    @staticmethod
    def student_logits(student_calls: ModuleOutputRecorder) -> torch.Tensor:
        """Shape (num_rois, K + 1)."""
        return student_calls.outputs[BOX_HEAD][0]

    @classmethod
    def teacher_logits(cls, teacher: BaseModel, inputs: torch.Tensor,
                       student_calls: ModuleOutputRecorder) -> torch.Tensor:
        """The teacher's class logits for the student's RoIs, shape (num_rois, K + 1)."""
        # float32, as mmcv's RoIAlign needs (a bf16 teacher's features are bfloat16)
        features = to_float32(teacher.extract_feat(inputs))
        rois = cls.student_rois(student_calls).detach()
        roi_head = teacher.roi_head
        if isinstance(roi_head.bbox_head, torch.nn.ModuleList):  # cascade: first stage
            return roi_head._bbox_forward(0, features, rois)['cls_score']
        return roi_head._bbox_forward(features, rois)['cls_score']
