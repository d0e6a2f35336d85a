"""How a distiller reads comparable outputs from mmdet's two-stage detectors."""

import re
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple, cast

import torch
from mmengine.model import BaseModel

from ..module_output_recorder import ModuleOutputRecorder, names_a_loss
from ..teachers.teacher_precision import to_float32
from .batch_padding import check_teacher_takes_student_padding

ROI_EXTRACTOR = 'roi_head.bbox_roi_extractor'
BOX_HEAD = 'roi_head.bbox_head'
# Multi-stage RoI heads whose stage i runs exactly bbox_roi_extractor[i] then bbox_head[i] on
# that stage's RoIs (HTC and the others add mask or semantic branches between them).
CASCADE_HEADS = ('CascadeRoIHead', )
STAGE_SUFFIX = re.compile(r'(?:\.(\d+))?')  # '' (one stage) or '.<stage>'


def num_box_stages(detector: BaseModel) -> int:
    """1 for a standard RoI head, the number of stages for a cascade one."""
    head = detector.roi_head.bbox_head
    return len(head) if isinstance(head, torch.nn.ModuleList) else 1


def stage_modules(detector: BaseModel, stage: int) -> Tuple[str, str]:
    """The RoI extractor's and box head's module names of ``stage`` (0-based)."""
    if not isinstance(detector.roi_head.bbox_head, torch.nn.ModuleList):
        return ROI_EXTRACTOR, BOX_HEAD
    return f'{ROI_EXTRACTOR}.{stage}', f'{BOX_HEAD}.{stage}'


def stage_of_index(detector: BaseModel, stage: int) -> int:
    """``detector``'s RoI stage of index ``stage`` (0-based), or its last if it has fewer."""
    return min(stage, num_box_stages(detector) - 1)


def compared_stages(student: BaseModel, teacher: BaseModel) -> Tuple[int, int]:
    """(student stage, teacher stage) whose class logits are compared: the student's last stage, and
    the teacher's stage of the same index (its last if it has fewer), i.e. the teacher's classifier
    trained on RoIs of the same kind (stage 1: RPN proposals at IoU 0.5; a cascade's last stage:

    refined boxes at its highest IoU).
    """
    student_stage = num_box_stages(student) - 1
    return student_stage, stage_of_index(teacher, student_stage)


def _box_head(detector: BaseModel, stage: int = -1):
    """The box head of ``stage`` (default: the last) of a standard or cascade RoI head."""
    head = detector.roi_head.bbox_head
    return head[stage] if isinstance(head, torch.nn.ModuleList) else head


def _bbox_forward(detector: BaseModel, stage: int, features: tuple, rois: torch.Tensor) -> dict:
    """``detector``'s RoI extractor and box head of its stage of index ``stage``
    (:func:`stage_of_index`) on ``rois`` (num_rois, 5): mmdet's ``_bbox_forward`` result
    (``cls_score``, ``bbox_pred``, ...)."""
    roi_head = detector.roi_head
    if isinstance(roi_head.bbox_head, torch.nn.ModuleList):  # cascade
        return roi_head._bbox_forward(stage_of_index(detector, stage), features, rois)
    return roi_head._bbox_forward(features, rois)


class RoIHeadAdapter:
    """RoI class logits of two-stage detectors (Faster R-CNN; Cascade R-CNN as teacher or student).

    The student's logits are its (last stage's) box head class scores for its own sampled
    RoIs of that stage, recorded while its stock ``loss()`` runs, together with those RoIs. The
    teacher then scores **the same RoIs**: its backbone and neck run on the batch, and the RoI
    extractor and box head of its stage of the same index (:func:`compared_stages`; a Faster
    R-CNN student meets a cascade teacher's first stage, a Cascade R-CNN student's last stage
    the teacher's last) run on the student's RoIs. The teacher runs no RPN, sampling, loss or
    other stage. Logits are (num_rois, K + 1), background last, to be compared with a softmax.
    A cascade student's earlier stages learn from their task losses only.

    Block-wise hybrids run the teacher's neck on the hybrid's backbone outputs, then the RoI
    extractor and box head of the teacher's compared stage on the student's sampled RoIs of its
    compared stage in this step: the stage pair the logit term compares, so a hybrid's logits
    and the teacher's are scores of one kind of RoI, and a hybrid costs one RoI stage whatever
    the cascade's length. Their task loss is that box head's loss with the student's targets
    for those RoIs, weighted as the student weighs its stage (:meth:`record_student_step` keeps
    the student's sampling).
    """

    task = 'two-stage detection (mmdet RoI heads)'
    teacher_logits_per_sample = False  # they score the student's RoIs of this step
    teacher_inputs_resizable = False  # the RoIs are in the student's coordinates
    image_classification = False
    teacher_bf16_refusal = ''
    hybrid_task_losses_refusal = ''
    compares_boxes = False

    @staticmethod
    def recorded_modules(student: BaseModel) -> Tuple[str, ...]:
        """The student's compared stage: its RoI extractor (for the RoIs) and box head."""
        return stage_modules(student, num_box_stages(student) - 1)

    @staticmethod
    def supports(model: BaseModel) -> bool:
        """Whether ``model`` is an mmdet two-stage detector with a box RoI head."""
        try:
            from mmdet.models.detectors import TwoStageDetector
        except ImportError:  # mmdet is optional: without it nothing is a detector
            return False
        return (isinstance(model, TwoStageDetector) and model.with_roi_head
                and getattr(model.roi_head, 'with_bbox', False))

    teacher_computes = ("backbone, neck, and the RoI extractor and box head of the compared "
                        "stage on the student's RoIs; no RPN, mask head or other stage")

    @staticmethod
    def teacher_runs(teacher: BaseModel, student: BaseModel, module_name: str) -> bool:
        """Whether the teacher's forward for distillation runs the module ``module_name``."""
        if names_a_loss(module_name):
            return False
        if module_name.startswith(('backbone', 'neck', 'data_preprocessor')):
            return True
        _, teacher_stage = compared_stages(student, teacher)
        return any(module_name == part or module_name.startswith(f'{part}.')
                   for part in stage_modules(teacher, teacher_stage))

    @classmethod
    def check_pair(cls, student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Raises ``TypeError`` for a multi-stage RoI head other than Cascade R-CNN's (HTC, SCNet,
        ...

        as student), a multi-branch student (TridentNet), or a teacher that is not
        two-stage, ``ValueError`` for other
        class counts or a padding that does not suit the teacher (see
        :func:`~.batch_padding.check_teacher_takes_student_padding`).
        """
        roi_head = type(student.roi_head).__name__
        branches = getattr(student.roi_head, 'num_branch', 1)
        if branches > 1:
            raise TypeError(
                f'model.student: a {type(student).__name__} student ({roi_head}) trains its '
                f'{branches} branches on every image ({branches} RoI sets per image) while a '
                'teacher in eval mode runs one branch; it is not supported as a student (it can '
                'be the teacher)')
        if isinstance(student.roi_head.bbox_head, torch.nn.ModuleList) and\
                roi_head not in CASCADE_HEADS:
            raise TypeError(
                f'model.student: a {type(student).__name__} student ({roi_head}, '
                f'{num_box_stages(student)} RoI stages) is not supported: its stages run more '
                'than an RoI extractor and a box head; Faster R-CNN- and Cascade R-CNN-style '
                'students are (any two-stage detector can be the teacher)')
        if not cls.supports(teacher):
            raise TypeError(f'{field}.config: the student is a two-stage detector but the '
                            f'teacher is a {type(teacher).__name__}; scoring the student\'s '
                            'RoIs needs a two-stage teacher (Faster/Cascade R-CNN)')
        student_classes = _box_head(student).num_classes
        teacher_classes = _box_head(teacher).num_classes
        if student_classes != teacher_classes:
            raise ValueError(f'{field}: the teacher\'s RoI head predicts {teacher_classes} '
                             f'classes and the student\'s {student_classes}; both must be equal')
        check_teacher_takes_student_padding(student, teacher, field)

    @staticmethod
    def _recorded(student_calls: ModuleOutputRecorder, prefix: str) -> Tuple[str, int]:
        """The recorded compared-stage module under ``prefix`` and its stage (0-based)."""
        for name in student_calls.module_names:
            stage = STAGE_SUFFIX.fullmatch(name[len(prefix):]) if name.startswith(prefix)\
                else None
            if stage is not None:
                return name, int(stage.group(1) or 0)
        raise KeyError(f'{prefix} is not recorded')

    @classmethod
    def student_rois(cls, student_calls: ModuleOutputRecorder) -> torch.Tensor:
        """The RoIs the student's compared box head scored, shape (num_rois, 5): batch index,
        box."""
        return student_calls.inputs[cls._recorded(student_calls, ROI_EXTRACTOR)[0]][1]

    @classmethod
    def student_logits(cls, student_calls: ModuleOutputRecorder) -> torch.Tensor:
        """Shape (num_rois, K + 1)."""
        return student_calls.outputs[cls._recorded(student_calls, BOX_HEAD)[0]][0]

    @staticmethod
    def paired_outputs(student_calls: ModuleOutputRecorder, student_outputs: dict,
                       teacher_outputs: dict) -> Tuple[dict, dict]:
        """The outputs as they are: the student's do not depend on the teacher."""
        return student_outputs, teacher_outputs

    @classmethod
    def teacher_logits(cls, teacher: BaseModel, inputs: torch.Tensor,
                       student_calls: ModuleOutputRecorder,
                       data_samples: Optional[list]) -> torch.Tensor:
        """The teacher's class logits for the student's RoIs, shape (num_rois, K + 1)."""
        # float32, as mmcv's RoIAlign needs (a bf16 teacher's features are bfloat16)
        features = to_float32(teacher.extract_feat(inputs))
        rois = cls.student_rois(student_calls).detach()
        images = features[0].shape[0]
        if rois.numel() and int(rois[:, 0].max()) >= images:  # RoIAlign would read past them
            raise ValueError(
                f'model.student: its RoIs index {int(rois[:, 0].max()) + 1} images but the '
                f"teacher's features hold {images}; the student's RoI head must score the "
                "batch's own images, one RoI set each")
        _, student_stage = cls._recorded(student_calls, BOX_HEAD)
        return _bbox_forward(teacher, student_stage, features, rois)['cls_score']

    @staticmethod
    def check_hybrid_pair(student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Block-wise hybrids take any pair that :meth:`check_pair` accepts (the teacher's compared
        stage scores the student's compared stage's RoIs)."""

    @staticmethod
    @contextmanager
    def record_student_step(student: BaseModel) -> Iterator[dict]:
        """While the student's ``loss()`` runs inside, keep what the box head of its compared (last)
        stage was trained on, in the dict this yields: ``sampling_results`` (its sampled RoIs and
        their targets), ``rois`` (num_rois, 5), ``rcnn_train_cfg``, ``stage`` (0-based) and
        ``loss_weight`` (the student's weight of that stage's losses: a cascade's
        ``stage_loss_weights``, else 1)."""
        from mmdet.structures.bbox import bbox2roi
        records: dict = {}
        roi_head = student.roi_head
        stock_bbox_loss = roi_head.bbox_loss
        cascade = isinstance(roi_head.bbox_head, torch.nn.ModuleList)
        compared = num_box_stages(student) - 1

        def recording_bbox_loss(*args, **kwargs):
            # a cascade's takes (stage, features, sampling_results), others (features,
            # sampling_results, ...): Grid R-CNN's also takes the image metas, PISA's its
            # sample weights
            stage, (_, sampling_results) = (args[0], args[1:3]) if cascade else (0, args[:2])
            if stage == compared:
                records.update(
                    sampling_results=sampling_results,
                    rois=bbox2roi([result.priors for result in sampling_results]),
                    rcnn_train_cfg=roi_head.train_cfg[stage] if cascade else roi_head.train_cfg,
                    stage=stage,
                    loss_weight=roi_head.stage_loss_weights[stage] if cascade else 1.0)
            return stock_bbox_loss(*args, **kwargs)

        own = roi_head.__dict__.get('bbox_loss')  # an instance's own override, kept
        roi_head.bbox_loss = recording_bbox_loss  # this instance only, for this step
        try:
            yield records
        finally:
            if own is None:
                del roi_head.bbox_loss
            else:
                roi_head.bbox_loss = own

    @staticmethod
    def probe_records(model: BaseModel, probe: torch.Tensor) -> None:
        """None: :meth:`head_forward` takes no records on the build-time probe image."""
        return None

    @staticmethod
    def head_forward(model: BaseModel, backbone_outputs: tuple,
                     records: Optional[dict] = None) -> tuple:
        """``model``'s neck on given backbone outputs (a block-wise hybrid), then the RoI extractor
        and box head of its stage compared with the student's (:func:`compared_stages`) on the
        student's RoIs of ``records``.

        Returns:
            (cls_score (num_rois, K + 1), bbox_pred (num_rois, 4·K)); the neck's outputs alone
            without ``records`` (a build-time probe: any RoI may read any level).
        """
        features = model.neck(backbone_outputs) if model.with_neck else backbone_outputs
        if records is None or 'rois' not in records:
            return tuple(features)
        results = _bbox_forward(model, records['stage'], features, records['rois'])
        return results['cls_score'], results['bbox_pred']

    @staticmethod
    def head_logits(model: BaseModel, head_outputs: tuple) -> torch.Tensor:
        """The class logits of :meth:`head_forward`'s result, (num_rois, K + 1)."""
        return head_outputs[0]

    @classmethod
    def head_class_logits(cls, model: BaseModel, backbone_outputs: tuple,
                          records: Optional[dict] = None) -> torch.Tensor:
        """The class logits of :meth:`head_forward` on the student's RoIs, (num_rois, K + 1) (the
        box head's shared layers serve both outputs, so it runs whole)."""
        return cls.head_logits(model, cls.head_forward(model, backbone_outputs, records))

    @staticmethod
    def head_task_losses(model: BaseModel, head_outputs: tuple, data_samples: list,
                         records: Optional[dict] = None) -> dict:
        """The loss of the box head that gave :meth:`head_forward`'s outputs (``loss_cls``, ``acc``,
        ``loss_bbox``), with the targets the student's sampling gave its RoIs (``records``), its
        loss terms weighted as the student weighs that stage."""
        cls_score, bbox_pred = head_outputs
        records = cast(dict, records)  # record_student_step's, given in training
        box_head = _box_head(model, stage_of_index(model, records['stage']))
        losses = box_head.loss_and_target(
            cls_score=cls_score, bbox_pred=bbox_pred, rois=records['rois'],
            sampling_results=records['sampling_results'],
            rcnn_train_cfg=records['rcnn_train_cfg'])['loss_bbox']
        return {name: value * records['loss_weight'] if 'loss' in name else value
                for name, value in losses.items()}
