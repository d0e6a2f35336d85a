"""How a distiller reads comparable outputs from mmdet's DETR-family detectors: the class scores
(and predicted boxes) of one shared set of distillation boxes, decoded by the teacher's and the
student's decoders.

A DETR's queries are not in correspondence across two models (each matches its own queries to the
objects), so their own predictions cannot be compared one to one. As KD-DETR (Wang et al., CVPR
2024) does with its "consistent distillation points", both models decode the same points instead:
here the boxes the teacher's own decoder starts from (its top-ranked encoder proposals, or the
learned anchor boxes of a DAB-DETR, which are KD-DETR's own distillation points). Each model forms
its decoder queries from those boxes by its own rule (:func:`queries_for_boxes`) and decodes them on
its own encoder memory, in a pass of its decoder separate from its training step, so that the
student's denoising and matching queries and its losses are untouched.
"""

from contextlib import nullcontext
from typing import ContextManager, Dict, List, Optional, Tuple

import torch
from mmengine.model import BaseModel

from ..module_output_recorder import ModuleOutputRecorder, names_a_loss
from ..teachers.teacher_sources import BOXES, LOGITS
from .batch_padding import check_teacher_takes_student_padding
from .protocol import RECORDED_DATA_SAMPLES, RECORDED_TEACHER_LOGITS

# The keys of a teacher's outputs (its "logits" entry) for this adapter.
CLASS_LOGITS = 'class_logits'
PREDICTED_BOXES = 'predicted_boxes'
DISTILLATION_BOXES = 'distillation_boxes'

SUPPORTED = 'DINO, DAB-DETR, or Deformable DETR with as_two_stage=True'


def is_detection_transformer(model: BaseModel) -> bool:
    """Whether ``model`` is an mmdet DETR-family detector (``DetectionTransformer``)."""
    try:
        from mmdet.models.detectors import DetectionTransformer
    except ImportError:  # mmdet is optional: without it nothing is a detector
        return False
    return isinstance(model, DetectionTransformer)


def check_decodes_boxes(model: BaseModel, field: str) -> None:
    """Refuse a DETR-family detector whose decoder cannot start from given boxes.

    Raises:
        ValueError: naming ``field``: Grounding DINO (it reads text prompts), DDQ-DETR (its
            decoder keeps per-call state that a second pass would overwrite), DETR and
            Conditional DETR (their decoders start from learned positional queries with no box),
            a DAB-DETR with anchor points or patterns, a Deformable DETR without ``as_two_stage``
            (it starts from learned 2-d points), or a head without sigmoid class scores.
    """
    from mmdet.models.detectors import DABDETR, DDQDETR, DeformableDETR, GroundingDINO
    name = type(model).__name__
    if isinstance(model, GroundingDINO):
        raise ValueError(f'{field}: a GroundingDINO cannot be distilled (its encoder and class '
                         'branches read the text prompt\'s embedding); supported: '
                         f'{SUPPORTED}')
    if isinstance(model, DABDETR):
        if model.query_dim != 4 or model.num_patterns:
            raise ValueError(f'{field}: this DAB-DETR starts its decoder from '
                             f'{model.query_dim}-d anchors repeated over {model.num_patterns} '
                             'patterns; decoding the shared distillation boxes needs 4-d anchor '
                             'boxes without patterns (model.decoder.query_dim=4, '
                             'model.num_patterns=0, as the stock configs)')
    elif isinstance(model, DDQDETR):
        raise ValueError(f'{field}: a DDQ-DETR cannot be distilled (its decoder resets the '
                         'distinct-query mask shared with its head on every call, so a second '
                         f'decoding pass would change its own loss); supported: {SUPPORTED}')
    elif not isinstance(model, DeformableDETR):
        raise ValueError(f'{field}: a {name} decoder starts from learned positional queries that '
                         'hold no box, so it cannot decode the shared distillation boxes; '
                         f'supported: {SUPPORTED}')
    elif not model.as_two_stage:
        raise ValueError(f'{field}: this {name} starts its decoder from learned 2-d reference '
                         'points; decoding the shared distillation boxes needs '
                         'model.as_two_stage=True (as the configs '
                         '"deformable-detr-refine-twostage_*")')
    if not model.bbox_head.loss_cls.use_sigmoid:
        raise ValueError(f'{field}: its bbox_head.loss_cls has no use_sigmoid=True; the class '
                         'scores are compared as independent sigmoids')


def queries_for_boxes(model: BaseModel, boxes: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The decoder queries that ``model`` forms for ``boxes``, by its own rule for the boxes its
    decoder starts from.

    DINO: its learned content queries (the first Q of ``query_embedding``, as it pairs them with
    its proposals by rank) with the boxes as reference boxes. Two-stage Deformable DETR: content
    and position queries from the boxes' sine embedding (``pos_trans_fc``, ``pos_trans_norm``).
    DAB-DETR: the boxes as its anchor boxes (positional queries before the sigmoid), with zero
    content queries, as it pairs them with its learned anchors.

    Args:
        model: A DINO, a two-stage Deformable DETR or a DAB-DETR (see
            :func:`check_decodes_boxes`).
        boxes: (B, Q, 4) normalized (cx, cy, w, h), Q <= ``model.num_queries``.

    Returns:
        The query arguments of ``model.forward_decoder``: ``query`` (B, Q, C), and
        ``reference_points`` (B, Q, 4) (DINO, Deformable DETR) and ``query_pos`` (B, Q, C) for
        Deformable DETR, (B, Q, 4) for DAB-DETR.
    """
    from mmdet.models.detectors import DABDETR, DINO
    from mmdet.models.layers.transformer import inverse_sigmoid
    batch, count = boxes.shape[:2]
    if isinstance(model, DINO):
        content = model.query_embedding.weight[:count]
        return dict(query=content.unsqueeze(0).repeat(batch, 1, 1), reference_points=boxes)
    if isinstance(model, DABDETR):
        return dict(query=boxes.new_zeros(batch, count, model.embed_dims),
                    query_pos=inverse_sigmoid(boxes))
    embedding = model.pos_trans_norm(
        model.pos_trans_fc(model.get_proposal_pos_embed(inverse_sigmoid(boxes))))
    query_pos, query = torch.split(embedding, model.embed_dims, dim=2)
    return dict(query=query, query_pos=query_pos, reference_points=boxes)


def decoder_inputs_of_encoder_call(model: BaseModel, encoder_call: dict) -> dict:
    """The inputs of ``model.forward_decoder`` besides its memory and queries (the second dict of
    ``model.pre_transformer``), from the keyword inputs of a call of its encoder.

    Args:
        model: A DINO, a two-stage Deformable DETR or a DAB-DETR.
        encoder_call: The keyword inputs ``model.forward_encoder`` gave ``model.encoder``.

    Returns:
        Deformable DETR and DINO: ``memory_mask`` (B, S), ``spatial_shapes`` (L_f, 2),
        ``level_start_index`` (L_f,) and ``valid_ratios`` (B, L_f, 2); DAB-DETR:
        ``memory_mask`` (B, S) and ``memory_pos`` (B, S, C).
    """
    from mmdet.models.detectors import DABDETR
    if isinstance(model, DABDETR):
        return dict(memory_mask=encoder_call['key_padding_mask'],
                    memory_pos=encoder_call['query_pos'])
    return dict(memory_mask=encoder_call['key_padding_mask'],
                spatial_shapes=encoder_call['spatial_shapes'],
                level_start_index=encoder_call['level_start_index'],
                valid_ratios=encoder_call['valid_ratios'])


def decoded_predictions(model: BaseModel, boxes: torch.Tensor, memory: torch.Tensor,
                        decoder_inputs: dict) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """``model``'s decoder on the queries it forms for ``boxes`` (:func:`queries_for_boxes`), on its
    encoder memory, and its head on every decoder layer.

    Args:
        model: A DINO, a two-stage Deformable DETR or a DAB-DETR.
        boxes: (B, Q, 4) normalized (cx, cy, w, h).
        memory: The encoder's output, (B, S, C) for S positions over the feature levels.
        decoder_inputs: The decoder's other inputs (:func:`decoder_inputs_of_encoder_call`, or
            the second dict of ``model.pre_transformer``).

    Returns:
        Per decoder layer, first to last: the class logits (B·Q, K), and the predicted boxes
        (B·Q, 4) normalized (cx, cy, w, h).
    """
    decoded = model.forward_decoder(memory=memory, **decoder_inputs,
                                    **queries_for_boxes(model, boxes))
    class_logits, predicted_boxes = model.bbox_head(decoded['hidden_states'],
                                                    decoded['references'])
    return ([layer.flatten(0, 1) for layer in class_logits],
            [layer.flatten(0, 1) for layer in predicted_boxes])


def encoded(model: BaseModel, features: Tuple[torch.Tensor, ...],
            data_samples: list) -> Tuple[dict, dict]:
    """``model``'s encoder on its neck's features of a batch.

    Args:
        model: A DINO, a two-stage Deformable DETR or a DAB-DETR.
        features: Per feature level, (B, C, H_l, W_l).
        data_samples: The batch's data samples (their image and padding shapes give the masks).

    Returns:
        The encoder's outputs (``memory`` (B, S, C), and what ``model.pre_decoder`` takes) and the
        decoder's inputs besides its memory and queries, as ``model.pre_transformer`` gives them.
    """
    encoder_inputs, decoder_inputs = model.pre_transformer(features, data_samples)
    return model.forward_encoder(**encoder_inputs), decoder_inputs


def initial_boxes(model: BaseModel, encoder_outputs: dict, count: int) -> torch.Tensor:
    """The first ``count`` of the boxes ``model``'s decoder starts from, (B, count, 4) normalized
    (cx, cy, w, h), ``model`` in eval mode (no denoising queries): for DINO and two-stage Deformable
    DETR its top-ranked encoder proposals of each image (best first), for DAB-DETR its learned
    anchor boxes (the same for every image)."""
    from mmdet.models.detectors import DABDETR
    if isinstance(model, DABDETR):
        anchors = model.query_embedding.weight[:count].sigmoid()
        return anchors.unsqueeze(0).repeat(encoder_outputs['memory'].shape[0], 1, 1)
    proposals, _ = model.pre_decoder(**encoder_outputs)
    return proposals['reference_points'][:, :count]


def last_layers(layers: List[torch.Tensor], count: int) -> List[torch.Tensor]:
    """The last ``count`` decoder layers' outputs (a deeper decoder pairs its later layers)."""
    return layers[len(layers) - count:]


class DetrAdapter:
    """Class scores of DETR-family detectors (DINO; Deformable DETR, two-stage; DAB-DETR) on shared
    boxes.

    The distillation boxes are the boxes the teacher's decoder starts from (:func:`initial_boxes`:
    its top-ranked encoder proposals for the batch, or a DAB-DETR's learned anchor boxes), the first
    Q of them with Q the smaller ``num_queries`` of the two models. The teacher decodes them as its
    own queries (without denoising queries) and its head gives the class logits and boxes of each
    decoder layer. The student's stock ``loss()`` runs unchanged, its encoder's inputs and output
    recorded; then its decoder decodes the same boxes on its own memory, with queries it forms by
    its own rule (:func:`queries_for_boxes`), and its head gives its logits and boxes. The
    distillation losses compare every decoder layer's (B·Q, K) logits as independent sigmoids
    (``activation='sigmoid'``, as the heads' focal losses), or with ``'boxes'`` the (B·Q, 4) boxes
    (``BoxDistillationLoss``), summed over layers; with decoders of different depths, the later
    layers of the deeper one pair with the shallower one's. Gradients reach the student's decoder,
    class branches, content queries, encoder, neck and backbone.

    Block-wise hybrids run the teacher's later backbone stages, neck and encoder on connected
    student features, then its decoder and head on the same distillation boxes; they take no task
    losses (:attr:`hybrid_task_losses_refusal`).
    """

    task = 'DETR-family detection (mmdet DetectionTransformer)'
    teacher_computes = ('backbone, neck, encoder, the boxes its decoder starts from (top-k encoder '
                        'proposals, or anchor boxes), and its decoder and head on those '
                        'distillation boxes')
    teacher_logits_per_sample = False  # boxes and per-layer logits: the cache does not keep them
    teacher_inputs_resizable = False  # the boxes are in the student's image frame
    image_classification = False
    teacher_bf16_refusal = (
        "mmcv's multi-scale deformable attention, which DINO and Deformable DETR run, has no "
        'bfloat16 CUDA kernel (its CUDA op takes float32 and float16 only): run a DETR teacher in '
        'float32')
    compares_boxes = True
    hybrid_task_losses_refusal = (
        "a DETR's head losses match its own queries to the ground truth (and DINO adds denoising "
        "queries); hybrids decode the teacher's distillation boxes, which have no such targets: "
        'set model.hybrids.task_losses=False (the hybrids then learn from their distillation and '
        'cross terms)')

    @staticmethod
    def supports(model: BaseModel) -> bool:
        """Whether ``model`` is an mmdet DETR-family detector."""
        return is_detection_transformer(model)

    @staticmethod
    def recorded_modules(student: BaseModel) -> Tuple[str, ...]:
        """The student's encoder: its memory and the level layout it ran on."""
        return ('encoder', )

    @staticmethod
    def teacher_runs(teacher: BaseModel, student: BaseModel, module_name: str) -> bool:
        """Every module but the losses, the denoising query generator and the learned queries (read
        as a weight, never called)."""
        return not (names_a_loss(module_name)
                    or module_name.startswith(('dn_query_generator', 'query_embedding')))

    @staticmethod
    def check_pair(student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Both must be DINO, two-stage Deformable or DAB-DETRs (:func:`check_decodes_boxes`) with
        sigmoid class scores of the same classes, and the teacher must take the student's batch
        padding.

        Raises:
            TypeError: the teacher is not a DETR-family detector.
            ValueError: naming the field at fault.
        """
        if not is_detection_transformer(teacher):
            raise TypeError(f'{field}.config: the student is a DETR-family detector but the '
                            f'teacher is a {type(teacher).__name__}; distilling it needs a DETR '
                            f'teacher ({SUPPORTED})')
        check_decodes_boxes(student, 'model.student')
        check_decodes_boxes(teacher, f'{field}.config')
        classes = student.bbox_head.cls_out_channels, teacher.bbox_head.cls_out_channels
        if classes[0] != classes[1]:
            raise ValueError(f'{field}: the teacher scores {classes[1]} classes and the student '
                             f'{classes[0]} (bbox_head.num_classes); their scores cannot be '
                             'compared')
        check_teacher_takes_student_padding(student, teacher, field)

    @staticmethod
    def student_logits(student_calls: ModuleOutputRecorder) -> None:
        """None: the student's compared logits depend on the teacher's boxes (see
        :meth:`paired_outputs`)."""
        return None

    @staticmethod
    def teacher_logits(teacher: BaseModel, inputs: torch.Tensor,
                       student_calls: ModuleOutputRecorder,
                       data_samples: Optional[list]) -> Dict[str, object]:
        """The distillation boxes and the teacher's class logits on them.

        Args:
            teacher: The frozen teacher (eval mode).
            inputs: The teacher-prepared batch (B, 3, H, W).
            student_calls: The student's recorded step (its model gives the query count).
            data_samples: The batch's data samples (image and padding shapes).

        Returns:
            ``distillation_boxes``: (B, Q, 4) normalized (cx, cy, w, h); ``class_logits``: per
            decoder layer, (B·Q, K).

        Raises:
            ValueError: no data samples (the masks of padded images need them).
        """
        if data_samples is None:
            raise ValueError('a DETR teacher needs the batch\'s data samples (image shapes)')
        encoder_outputs, decoder_inputs = encoded(teacher, teacher.extract_feat(inputs),
                                                  data_samples)
        boxes = initial_boxes(teacher, encoder_outputs,
                              min(teacher.num_queries, student_calls.model.num_queries))
        class_logits, predicted_boxes = decoded_predictions(teacher, boxes,
                                                            encoder_outputs['memory'],
                                                            decoder_inputs)
        return {DISTILLATION_BOXES: boxes, CLASS_LOGITS: class_logits,
                PREDICTED_BOXES: predicted_boxes}

    @staticmethod
    def paired_outputs(student_calls: ModuleOutputRecorder, student_outputs: dict,
                       teacher_outputs: dict) -> Tuple[dict, dict]:
        """The student's decoder on the teacher's distillation boxes, on the student's memory of its
        step; both models' class logits (``'logits'``) and predicted boxes (``'boxes'``) per paired
        decoder layer.

        Args:
            student_calls: The student's recorded step (its encoder's keyword inputs and output).
            student_outputs: The student's compared outputs (``'logits'``: None).
            teacher_outputs: One teacher's outputs (``'logits'``: :meth:`teacher_logits`'s).

        Returns:
            The student's and the teacher's outputs with, per paired decoder layer, the class
            logits (B·Q, K) as ``'logits'`` and the boxes (B·Q, 4) as ``'boxes'``.
        """
        student = student_calls.model
        teacher = teacher_outputs[LOGITS]
        student_logits, student_boxes = decoded_predictions(
            student, teacher[DISTILLATION_BOXES], student_calls.outputs['encoder'],
            decoder_inputs_of_encoder_call(student, student_calls.keyword_inputs['encoder']))
        count = min(len(student_logits), len(teacher[CLASS_LOGITS]))
        return ({**student_outputs, LOGITS: last_layers(student_logits, count),
                 BOXES: last_layers(student_boxes, count)},
                {**teacher_outputs, LOGITS: last_layers(teacher[CLASS_LOGITS], count),
                 BOXES: last_layers(teacher[PREDICTED_BOXES], count)})

    @staticmethod
    def check_hybrid_pair(student: BaseModel, teacher: BaseModel, field: str) -> None:
        """Block-wise hybrids take any pair that :meth:`check_pair` accepts."""

    @staticmethod
    def record_student_step(student: BaseModel) -> ContextManager[dict]:
        """What a hybrid needs from the student's step besides its outputs: nothing (it decodes the
        teacher's distillation boxes, given with the records by the hybrids)."""
        return nullcontext({})

    @staticmethod
    def probe_records(model: BaseModel, probe: torch.Tensor) -> dict:
        """Records for the build-time probe image: its data samples (unpadded) and one distillation
        box over the middle of the image (the probe only follows which stage states reach the
        logits; every query's attention samples every feature level).

        Args:
            model: The DETR whose head the probe runs.
            probe: (B, 3, H, W).
        """
        from mmdet.structures import DetDataSample
        size = (int(probe.shape[-2]), int(probe.shape[-1]))
        data_samples = [DetDataSample(metainfo=dict(img_shape=size, batch_input_shape=size))
                        for _ in range(probe.shape[0])]
        middle = probe.new_tensor([0.5, 0.5, 0.5, 0.5]).expand(probe.shape[0], 1, 4)
        return {RECORDED_DATA_SAMPLES: data_samples,
                RECORDED_TEACHER_LOGITS: {DISTILLATION_BOXES: middle}}

    @staticmethod
    def head_forward(model: BaseModel, backbone_outputs: tuple,
                     records: Optional[dict] = None) -> List[torch.Tensor]:
        """``model``'s neck, encoder, and decoder and head on the teacher's distillation boxes (a
        block-wise hybrid; the box branches run too, as the decoder refines its reference boxes
        layer by layer with them).

        Args:
            model: The teacher.
            backbone_outputs: What ``model.backbone`` would return: per level (B, C_l, H_l, W_l).
            records: With the batch's data samples and the teacher's outputs (its
                ``distillation_boxes`` (B, Q, 4)), as the hybrids give them.

        Returns:
            Per decoder layer, first to last, the class logits (B·Q, K).

        Raises:
            ValueError: no records (the boxes and the image shapes come from them).
        """
        if records is None:
            raise ValueError("a DETR hybrid decodes the teacher's distillation boxes: it needs "
                             'the records holding them')
        features = model.neck(backbone_outputs) if model.with_neck else backbone_outputs
        encoder_outputs, decoder_inputs = encoded(model, features,
                                                  records[RECORDED_DATA_SAMPLES])
        boxes = records[RECORDED_TEACHER_LOGITS][DISTILLATION_BOXES]
        class_logits, _ = decoded_predictions(model, boxes, encoder_outputs['memory'],
                                              decoder_inputs)
        return class_logits

    @staticmethod
    def head_logits(model: BaseModel, head_outputs: List[torch.Tensor]) -> List[torch.Tensor]:
        """:meth:`head_forward`'s result as it is: per decoder layer (B·Q, K)."""
        return head_outputs

    @classmethod
    def head_class_logits(cls, model: BaseModel, backbone_outputs: tuple,
                          records: Optional[dict] = None) -> List[torch.Tensor]:
        """:meth:`head_forward` (its logits are all it computes): per decoder layer (B·Q, K)."""
        return cls.head_forward(model, backbone_outputs, records)

    @classmethod
    def head_task_losses(cls, model: BaseModel, head_outputs: List[torch.Tensor],
                         data_samples: list, records: Optional[dict] = None) -> dict:
        """Refused (:attr:`hybrid_task_losses_refusal`; the hybrids check it when built).

        Raises:
            ValueError: always.
        """
        raise ValueError(f'model.hybrids.task_losses: {cls.hybrid_task_losses_refusal}')
