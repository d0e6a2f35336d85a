"""Block-wise distillation of DETR-family students: hybrids decode the teacher's distillation boxes.

Hybrid N_i = student backbone stages 1..i -> connector -> the teacher's later backbone stages, neck,
encoder and decoder on the shared distillation boxes, then the teacher's class branches. DINO and
two-stage Deformable DETR: real mmdet models, small, on generated shapes.
"""

from typing import Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from mmkd_plugins.checkpoint import extract_student_state_dict
from mmkd_plugins.models import BlockwiseDistiller
from mmkd_plugins.models.losses import binary_kd_loss
from mmkd_plugins.models.task_adapters.detr_adapter import (DISTILLATION_BOXES, decoded_predictions,
                                                            encoded)
from mmkd_plugins.models.teachers import build_model_from_config
from ..support.detectors import batch_of
from ..support.detr_detectors import (DAB_DETR, DEFORMABLE_TWO_STAGE, DINO, small_detr,
                                      small_detr_pair)

KD = dict(loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid'))
LOGITS_ONLY = dict(task_losses=False)


@pytest.fixture(autouse=True)
def mmdet_scope():
    init_default_scope('mmdet')


def blockwise_of(tmp_path, student_base: str, teacher_base: str, hybrids: dict = LOGITS_ONLY,
                 student_overrides: dict = None, teacher_overrides: dict = None,
                 student_is_teacher: bool = False) -> BlockwiseDistiller:
    """A block-wise distiller of small DETRs, initialized; the teacher's weights random (seed 1) and
    saved; with ``student_is_teacher`` the student holds them too."""
    student, teacher = small_detr_pair(tmp_path, student_base, teacher_base, student_overrides,
                                       teacher_overrides)
    distiller = BlockwiseDistiller(student=student, teacher=teacher, distill_losses=KD,
                                   hybrids=hybrids)
    distiller.init_weights()  # DETRs create their level embeddings without values
    if student_is_teacher:
        distiller.student.load_state_dict(distiller.teacher.state_dict())
    return distiller


def hybrids_and_teacher(distiller: BlockwiseDistiller, batch: dict,
                        boxes: Optional[torch.Tensor] = None) -> tuple:
    """Every hybrid's output and the teacher's outputs (its distillation boxes and per-layer class
    logits) on a preprocessed batch, as :meth:`BlockwiseDistiller.loss` computes them; with
    ``boxes`` (B, Q, 4), the hybrids decode those instead of the teacher's."""
    _, _, teacher_outputs = distiller.run_student_and_teachers(batch['inputs'],
                                                              batch['data_samples'])
    teacher = teacher_outputs['teacher']['logits']
    given = teacher if boxes is None else {**teacher, DISTILLATION_BOXES: boxes}
    states = {stage: distiller.student_recorder.outputs[name]
              for stage, name in distiller.hybrids.student_modules.items()}
    hybrids = distiller.hybrids(states, distiller.teacher, batch['inputs'],
                                batch['data_samples'], records={}, teacher_logits=given)
    return hybrids, teacher


@pytest.mark.parametrize('base', [DINO, DEFORMABLE_TWO_STAGE, DAB_DETR])
def test_a_detector_distilled_from_itself_with_identity_connectors_gives_the_teachers_scores(
        tmp_path, shapes_root, base):
    """Student = teacher weights, identity connectors (the backbones' norms stay in eval mode:
    ``norm_eval``): every hybrid is the teacher, so on the distillation boxes it is given, in a
    padded batch, each hybrid's class logits of every decoder layer are the teacher's on those
    boxes, and every KD term is 0."""
    distiller = blockwise_of(tmp_path, base, base, student_is_teacher=True,
                             hybrids=dict(LOGITS_ONLY, connector=dict(type='IdentityConnector')))
    distiller.train()
    batch = distiller.data_preprocessor(batch_of(shapes_root, size=2), True)
    batch['data_samples'][1].set_metainfo(dict(img_shape=(48, 40)))  # padded to 64 x 64
    hybrids, teacher = hybrids_and_teacher(distiller, batch)
    assert [hybrid.stage for hybrid in hybrids] == [1, 2, 3, 4]
    for hybrid in hybrids:
        assert [layer.shape for layer in hybrid.logits] == [(2 * 12, 3)] * 2
        for hybrid_layer, teacher_layer in zip(hybrid.logits, teacher['class_logits']):
            torch.testing.assert_close(hybrid_layer, teacher_layer, rtol=1e-4, atol=1e-4)

    # other boxes than the teacher's top proposals: the hybrids decode the boxes they are given
    boxes = teacher[DISTILLATION_BOXES].flip(1) * 0.8 + 0.1
    with torch.no_grad():
        encoder_outputs, decoder_inputs = encoded(
            distiller.teacher, distiller.teacher.extract_feat(batch['inputs']),
            batch['data_samples'])
        expected, _ = decoded_predictions(distiller.teacher, boxes, encoder_outputs['memory'],
                                          decoder_inputs)
    hybrids, _ = hybrids_and_teacher(distiller, batch, boxes)
    for hybrid in hybrids:
        for hybrid_layer, expected_layer, teacher_layer in zip(hybrid.logits, expected,
                                                               teacher['class_logits']):
            torch.testing.assert_close(hybrid_layer, expected_layer, rtol=1e-4, atol=1e-4)
            assert not torch.allclose(hybrid_layer, teacher_layer, atol=1e-3)
    losses = distiller.loss(batch['inputs'], batch['data_samples'])
    for stage in (1, 2, 3, 4):
        assert losses[f'hybrid{stage}.distill.loss_kd'].item() == pytest.approx(0.0, abs=1e-5)
        assert losses[f'hybrid{stage}.cross.loss_kd'].item() == pytest.approx(0.0, abs=1e-5)
    assert not any(key.startswith('hybrid') and 'distill' not in key and 'cross' not in key
                   for key in losses)  # no hybrid task losses


def test_a_deformable_detr_trains_through_a_deeper_dino_teachers_hybrids(tmp_path, shapes_root):
    """A two-stage Deformable DETR student (2 decoder layers, 12 queries) and a DINO teacher (3
    layers, 8 queries): the hybrids' logits pair with the student's by the teacher's last two
    layers; hybrid N_2's terms alone reach the student's stage 2 and connector C_2; over AdamW steps
    with DINO's clipping the teacher stays bit-identical; the export strict-loads into the stock
    student."""
    distiller = blockwise_of(tmp_path, DEFORMABLE_TWO_STAGE, DINO,
                             student_overrides=small_detr(num_queries=12, decoder_layers=2),
                             teacher_overrides=small_detr(num_queries=8, decoder_layers=3))
    teacher_before = {k: v.clone() for k, v in distiller.teacher.state_dict().items()}
    distiller.train()
    data = batch_of(shapes_root, size=2)
    batch = distiller.data_preprocessor(data, True)
    losses = distiller.loss(batch['inputs'], batch['data_samples'])
    assert {f'hybrid{stage}.distill.loss_kd' for stage in (1, 2, 3, 4)} <= set(losses)
    hybrid_terms = losses['hybrid2.distill.loss_kd'] + losses['hybrid2.cross.loss_kd']
    stage_2 = distiller.student.backbone.layer2[0].downsample[0].weight  # (stage 1 is frozen)
    connector = distiller.hybrids.connectors['stage2'].conv.weight
    assert all(grad.abs().sum() > 0
               for grad in torch.autograd.grad(hybrid_terms, [stage_2, connector]))

    hybrids, teacher = hybrids_and_teacher(distiller, batch)  # recomputed: the same values
    assert [layer.shape for layer in hybrids[0].logits] == [(2 * 8, 3)] * 3  # the teacher's 3
    paired_kd = sum(binary_kd_loss(hybrid_layer, teacher_layer, 1.0)  # its last two layers pair
                    for hybrid_layer, teacher_layer in zip(hybrids[1].logits[1:],
                                                           teacher['class_logits'][1:]))
    torch.testing.assert_close(losses['hybrid2.distill.loss_kd'], paired_kd)

    optimizer = OptimWrapper(torch.optim.AdamW(distiller.parameters(), lr=1e-4),
                             clip_grad=dict(max_norm=0.1, norm_type=2))  # DINO's recipe
    for _ in range(2):
        batch = distiller.data_preprocessor(data, True)
        losses = distiller(batch['inputs'], batch['data_samples'], mode='loss')
        assert all(torch.isfinite(value) for key, value in losses.items() if 'loss' in key)
        optimizer.update_params(sum(v for k, v in losses.items() if 'loss' in k))
    for key, value in distiller.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key

    stock = build_model_from_config(Config.fromfile(str(tmp_path / 'student.py')))
    stock.load_state_dict(extract_student_state_dict(distiller.state_dict()), strict=True)


def test_hybrid_task_losses_of_a_detr_are_refused_naming_the_field(tmp_path):
    with pytest.raises(ValueError, match=r'model\.hybrids\.task_losses: .*task_losses=False'):
        blockwise_of(tmp_path, DINO, DINO, hybrids={})


def test_hybrids_in_turn_reach_every_connector_when_the_teacher_decoder_is_deeper(
        tmp_path, shapes_root):
    """``per_step=1`` over N_3 and N_4: in N_3's turn connector C_4 is unused and joins the logits
    times zero, on the decoder layer that pairs with the shallower student's (DDP needs a gradient
    for every parameter in every step)."""
    distiller = blockwise_of(tmp_path, DINO, DINO, hybrids=dict(LOGITS_ONLY, stages=[3, 4],
                                                                per_step=1),
                             student_overrides=small_detr(decoder_layers=2),
                             teacher_overrides=small_detr(decoder_layers=3))
    distiller.train()
    batch = distiller.data_preprocessor(batch_of(shapes_root, size=2), True)
    losses = distiller.loss(batch['inputs'], batch['data_samples'])
    assert {key.split('.')[0] for key in losses if key.startswith('hybrid')} == {'hybrid3'}
    sum(value for key, value in losses.items() if 'loss' in key).backward()
    for stage in (3, 4):
        assert distiller.hybrids.connectors[f'stage{stage}'].conv.weight.grad is not None, stage
