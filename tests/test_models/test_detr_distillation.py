"""Distilling DETR-family detectors on shared distillation boxes.

DINO and two-stage Deformable DETR: real mmdet models, small, on generated shapes.
"""

from typing import Tuple

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from mmkd_plugins.models import Distiller
from mmkd_plugins.models.losses import binary_kd_loss, box_distillation_loss
from mmkd_plugins.models.task_adapters import DetrAdapter
from mmkd_plugins.models.task_adapters.detr_adapter import CLASS_LOGITS, DISTILLATION_BOXES
from ..conftest import save_random_checkpoint
from ..support.detectors import RETINANET, batch_of
from ..support.detr_detectors import (DAB_DETR, DDQ, DEFORMABLE, DEFORMABLE_TWO_STAGE, DETR, DINO,
                                      detr_config_file, small_detr, small_detr_pair)

KD = dict(loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid'))


@pytest.fixture(autouse=True)
def mmdet_scope():
    init_default_scope('mmdet')


def distiller_of(tmp_path, student_base: str, teacher_base: str, losses: dict = KD,
                 student_overrides: dict = None, teacher_overrides: dict = None) -> Distiller:
    """A distiller of small DETRs, initialized; the teacher's weights random (seed 1) and saved."""
    student, teacher = small_detr_pair(tmp_path, student_base, teacher_base, student_overrides,
                                       teacher_overrides)
    distiller = Distiller(student=student, teacher=teacher, distill_losses=losses)
    distiller.init_weights()  # DETRs create their level embeddings without values
    return distiller


def distill_step(distiller: Distiller, data: dict) -> dict:
    batch = distiller.data_preprocessor(data, True)
    return distiller(batch['inputs'], batch['data_samples'], mode='loss')


def compared_views(distiller: Distiller, batch: dict) -> Tuple[dict, dict]:
    """The student's and the teacher's outputs as the losses compare them, on a preprocessed batch
    (``'logits'`` and ``'boxes'`` per paired decoder layer)."""
    _, student_outputs, teacher_outputs = distiller.run_student_and_teachers(
        batch['inputs'], batch['data_samples'])
    return distiller.paired_outputs(student_outputs, teacher_outputs['teacher'])


@pytest.mark.parametrize('base', [DINO, DEFORMABLE_TWO_STAGE, DAB_DETR])
def test_a_detector_teaching_itself_gives_its_own_class_scores_on_the_shared_boxes(
        tmp_path, shapes_root, base):
    torch.manual_seed(0)
    distiller = distiller_of(tmp_path, base, base)
    distiller.student.load_state_dict(distiller.teacher.state_dict())
    distiller.train()
    batch = distiller.data_preprocessor(batch_of(shapes_root, size=2), True)
    student_losses, student_outputs, teacher_outputs = distiller.run_student_and_teachers(
        batch['inputs'], batch['data_samples'])
    teacher = teacher_outputs['teacher']['logits']
    boxes = teacher[DISTILLATION_BOXES]
    assert boxes.shape == (2, 12, 4) and boxes.min() >= 0 and boxes.max() <= 1
    student_view, teacher_view = distiller.paired_outputs(student_outputs,
                                                          teacher_outputs['teacher'])
    assert len(student_view['logits']) == 2  # decoder layers
    for student_layer, teacher_layer in zip(student_view['logits'], teacher_view['logits']):
        assert student_layer.shape == (2 * 12, 3)
        torch.testing.assert_close(student_layer, teacher_layer, rtol=1e-4, atol=1e-4)
        assert binary_kd_loss(student_layer, teacher_layer, 1.0).item() == pytest.approx(
            0.0, abs=1e-6)
    assert teacher[CLASS_LOGITS][-1] is teacher_view['logits'][-1]


def test_with_the_distillation_weighted_zero_a_step_s_gradients_are_the_stock_step_s(
        tmp_path, shapes_root):
    """The second decoding pass (on the student's recorded encoder memory) changes nothing of the
    student's own step: its losses (denoising and matching queries, encoder proposals) and, with the
    distillation loss weighted 0, the gradients of every parameter are the stock ``loss()``'s (an
    in-place change of a tensor both passes use would differ or fail in backward)."""
    distiller = distiller_of(tmp_path, DINO, DINO, losses=dict(
        loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid', loss_weight=0.0)))
    distiller.train()
    batch = distiller.data_preprocessor(batch_of(shapes_root, size=2), True)
    student = distiller.student

    def gradients(losses: dict) -> dict:
        student.zero_grad()
        sum(value for key, value in losses.items() if 'loss' in key).backward()
        return {name: parameter.grad.clone() for name, parameter in student.named_parameters()
                if parameter.grad is not None}

    torch.manual_seed(3)  # the denoising queries' noise
    stock = student.loss(batch['inputs'], batch['data_samples'])
    stock_gradients = gradients(stock)
    torch.manual_seed(3)
    losses = distiller(batch['inputs'], batch['data_samples'], mode='loss')
    assert {'loss_cls', 'dn_loss_cls', 'enc_loss_cls'} <= set(stock)
    for key, value in stock.items():
        torch.testing.assert_close(losses[f'student.{key}'], value)
    assert losses['distill.loss_kd'].item() == 0.0
    distilled_gradients = gradients(losses)
    assert distilled_gradients.keys() == stock_gradients.keys()
    for name, gradient in stock_gradients.items():
        torch.testing.assert_close(distilled_gradients[name], gradient, msg=name)


@pytest.mark.parametrize('base', [DINO, DEFORMABLE_TWO_STAGE, DAB_DETR])
def test_the_teacher_s_scores_are_its_own_decoder_s_on_its_proposals_in_a_padded_batch(
        tmp_path, shapes_root, base):
    """With as many distillation boxes as its queries, the teacher's class logits are those of
    mmdet's own forward (``forward_transformer`` in eval mode, then its head): the queries formed
    from the boxes are its own.

    One image of the batch is padded (48 x 40 of 64 x 64), so the memory mask (and the valid ratios
    of the multi-scale ones) take part.
    """
    distiller = distiller_of(tmp_path, base, base)
    teacher = distiller.teacher
    batch = distiller.data_preprocessor(batch_of(shapes_root, size=2), True)
    batch['data_samples'][1].set_metainfo(dict(img_shape=(48, 40)))
    _, _, teacher_outputs = distiller.run_student_and_teachers(batch['inputs'],
                                                               batch['data_samples'])
    scores = teacher_outputs['teacher']['logits'][CLASS_LOGITS]
    with torch.no_grad():
        own = teacher.forward_transformer(teacher.extract_feat(batch['inputs']),
                                          batch['data_samples'])
        expected = [layer.flatten(0, 1) for layer in
                    teacher.bbox_head(own['hidden_states'], own['references'])[0]]
    assert len(scores) == len(expected) == 2
    for got, want in zip(scores, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('student_base, teacher_base', [(DINO, DINO),
                                                         (DINO, DEFORMABLE_TWO_STAGE),
                                                         (DEFORMABLE_TWO_STAGE, DINO),
                                                         (DAB_DETR, DINO), (DINO, DAB_DETR)])
def test_the_distillation_term_trains_the_student_and_leaves_the_teacher_unchanged(
        tmp_path, shapes_root, student_base, teacher_base):
    """Different variants, query counts (12 vs 8) and decoder depths (3 vs 2): the later layers
    pair; the term's gradient reaches the decoder, the class branches, the encoder and the
    backbone."""
    distiller = distiller_of(tmp_path, student_base, teacher_base, losses=dict(
        loss_dist=dict(type='DISTLoss', activation='sigmoid')),
        student_overrides=small_detr(num_queries=12, decoder_layers=3, base=student_base),
        teacher_overrides=small_detr(num_queries=8, decoder_layers=2, base=teacher_base))
    teacher_before = {k: v.clone() for k, v in distiller.teacher.state_dict().items()}
    data = batch_of(shapes_root, size=2)
    distiller.train()
    student_view, teacher_view = compared_views(distiller,
                                                distiller.data_preprocessor(data, True))
    assert [layer.shape for layer in student_view['logits']] == [(2 * 8, 3)] * 2
    assert [layer.shape for layer in teacher_view['logits']] == [(2 * 8, 3)] * 2
    term = distiller.distill_losses['loss_dist'](student_view['logits'][0],
                                                 teacher_view['logits'][0])
    term.backward()
    student = distiller.student
    decoder_layer = student.decoder.layers[1]  # the first paired layer: the student's second
    per_layer_branches = hasattr(student.bbox_head, 'cls_branches')  # DAB-DETR shares one
    class_branch = (student.bbox_head.cls_branches[1] if per_layer_branches
                    else student.bbox_head.fc_cls)
    for name, parameter in [('decoder', next(decoder_layer.parameters())),
                            ('class branch', class_branch.weight),
                            ('encoder', next(student.encoder.parameters())),
                            # (the blocks' last norms start at zero: zero_init_residual)
                            ('backbone', student.backbone.layer4[0].downsample[0].weight)]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    if per_layer_branches:
        later_branch = student.bbox_head.cls_branches[2].weight.grad  # not in the first pair's
        assert later_branch is None or not later_branch.any()

    optimizer = OptimWrapper(torch.optim.AdamW(distiller.parameters(), lr=1e-4),
                             clip_grad=dict(max_norm=0.1, norm_type=2))  # DINO's recipe
    for _ in range(2):
        losses = distill_step(distiller, data)
        assert torch.isfinite(losses['distill.loss_dist'])
        optimizer.update_params(sum(v for k, v in losses.items() if 'loss' in k))
    for key, value in distiller.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key


def test_a_bf16_detr_teacher_is_refused_naming_the_field(tmp_path):
    config = detr_config_file(DINO, str(tmp_path / 'dino.py'), **small_detr())
    checkpoint = save_random_checkpoint(config, str(tmp_path / 'dino.pth'), initialized=True)
    with pytest.raises(ValueError, match=r'model\.teacher\.bf16: .*no bfloat16 CUDA kernel'):
        Distiller(student=Config.fromfile(config).model,
                  teacher=dict(config=config, checkpoint=checkpoint, bf16=True),
                  distill_losses=KD)


def test_a_teacher_module_that_the_teacher_never_calls_is_refused(tmp_path):
    """The learned queries are read as a weight, never called: comparing their output is refused at
    build time."""
    config = detr_config_file(DINO, str(tmp_path / 'dino.py'), **small_detr())
    checkpoint = save_random_checkpoint(config, str(tmp_path / 'dino.pth'), initialized=True)
    with pytest.raises(ValueError, match='the teacher never runs'):
        Distiller(student=Config.fromfile(config).model,
                  teacher=dict(config=config, checkpoint=checkpoint),
                  distill_losses=dict(loss_mse=dict(type='mmdet.MSELoss',
                                                    student_output='query_embedding',
                                                    teacher_output='query_embedding')))


def test_the_box_term_compares_each_layer_s_boxes_of_the_shared_points(tmp_path, shapes_root):
    """``BoxDistillationLoss`` on ``'boxes'``: 0 for a detector teaching itself; between two
    detectors, the sum over paired layers of L1 + GIoU on their predicted boxes, whose gradient
    reaches the student's box branches."""
    box_loss = dict(loss_box=dict(type='BoxDistillationLoss', student_output='boxes',
                                  teacher_output='boxes'))
    (tmp_path / 'same').mkdir()
    (tmp_path / 'pair').mkdir()
    same = distiller_of(tmp_path / 'same', DINO, DINO, losses=box_loss)
    with torch.no_grad():  # boxes other than the references (initialized to no offset)
        for branch in same.teacher.bbox_head.reg_branches:
            torch.nn.init.normal_(branch[-1].weight, std=0.01)
    same.student.load_state_dict(same.teacher.state_dict())
    same.train()
    data = batch_of(shapes_root, size=2)
    assert distill_step(same, data)['distill.loss_box'].item() == pytest.approx(0.0, abs=1e-5)

    distiller = distiller_of(tmp_path / 'pair', DINO, DEFORMABLE_TWO_STAGE, losses=box_loss)
    for branch in distiller.student.bbox_head.reg_branches:  # initialized to predict no offset
        torch.nn.init.normal_(branch[-1].weight, std=0.01)
    distiller.train()
    student_view, teacher_view = compared_views(distiller,
                                                distiller.data_preprocessor(data, True))
    assert [boxes.shape for boxes in student_view['boxes']] == [(2 * 12, 4)] * 2
    term = sum(box_distillation_loss(s, t)
               for s, t in zip(student_view['boxes'], teacher_view['boxes']))
    assert term.item() > 0
    term.backward()
    assert distiller.student.bbox_head.reg_branches[1][0].weight.grad.abs().sum() > 0


def test_boxes_are_refused_for_students_without_them_and_on_one_side_only(tmp_path):
    from ..support.detectors import RETINANET
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'retinanet.pth'))
    with pytest.raises(ValueError, match=r"loss_box: compares 'boxes', which only DETR-family"):
        Distiller(student=Config.fromfile(RETINANET).model,
                  teacher=dict(config=RETINANET, checkpoint=checkpoint),
                  distill_losses=dict(loss_box=dict(type='BoxDistillationLoss',
                                                    student_output='boxes',
                                                    teacher_output='boxes')))
    with pytest.raises(ValueError, match=r"set student_output='boxes' and teacher_output='boxes'"):
        distiller_of(tmp_path, DINO, DINO, losses=dict(loss_box=dict(
            type='BoxDistillationLoss', student_output='boxes')))


@pytest.mark.parametrize('teacher_base, overrides, message', [
    (DEFORMABLE, small_detr(), 'as_two_stage=True'),
    (DETR, dict(bbox_head=dict(num_classes=3)), 'learned positional queries that hold no box'),
    (DDQ, small_detr(), 'DDQ-DETR cannot be distilled'),
    (DINO, small_detr(num_classes=5), 'scores 5 classes and the student 3'),
    (DAB_DETR, dict(small_detr(base=DAB_DETR), num_patterns=3), '4-d anchor boxes without '
     'patterns'),
])
def test_teachers_that_cannot_share_boxes_are_refused_at_build_time(tmp_path, teacher_base,
                                                                    overrides, message):
    with pytest.raises(ValueError, match=message) as error:
        distiller_of(tmp_path, DINO, teacher_base, teacher_overrides=overrides)
    assert 'model.teacher' in str(error.value)


def test_a_one_stage_teacher_for_a_detr_student_is_refused(tmp_path):
    student_config = detr_config_file(DINO, str(tmp_path / 'student.py'), **small_detr())
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'retinanet.pth'))
    with pytest.raises(TypeError, match='needs a DETR teacher'):
        Distiller(student=Config.fromfile(student_config).model,
                  teacher=dict(config=RETINANET, checkpoint=checkpoint), distill_losses=KD)


def test_building_leaves_the_model_configs_as_they_were(tmp_path):
    """DETR-family detectors complete their ``bbox_head`` config in place; the run's config (and the
    student config exported from it) must not keep those keys, which the stock model refuses."""
    import copy

    from mmkd_plugins.models.teachers import build_model_from_config
    config = detr_config_file(DINO, str(tmp_path / 'dino.py'), **small_detr())
    checkpoint = save_random_checkpoint(config, str(tmp_path / 'dino.pth'), initialized=True)
    full_config = Config.fromfile(config)
    build_model_from_config(full_config)
    assert 'num_pred_layer' not in full_config.model.bbox_head
    student = Config.fromfile(config).model
    as_written = copy.deepcopy(student)
    Distiller(student=student, teacher=dict(config=config, checkpoint=checkpoint),
              distill_losses=KD)
    assert student == as_written


def test_the_adapter_is_chosen_for_detr_students_only(tmp_path):
    from mmkd_plugins.models.task_adapters import adapter_for
    from mmkd_plugins.models.teachers import build_model_from_config
    config = detr_config_file(DINO, str(tmp_path / 'dino.py'), **small_detr())
    assert adapter_for(build_model_from_config(Config.fromfile(config))) is DetrAdapter


def test_a_dino_kd_run_exports_a_student_that_the_stock_config_loads_and_evaluates(
        tmp_path, shapes_root):
    """The shipped DINO config's recipe through the runner (one epoch of 8 shapes at 64 px, the
    stock DINO optimizer and hooks): the exported student strict-loads into its stock config, which
    scores it with mmdet's COCO metric."""
    from mmengine.runner import Runner

    from mmkd_plugins.checkpoint import load_checkpoint_weights_only
    from mmkd_plugins.models.teachers import build_model_from_config
    from ..conftest import REPO_ROOT, shapes_dataset
    from ..support.detectors import SMALL_PIPELINE
    teacher_config = detr_config_file(DINO, str(tmp_path / 'teacher.py'), **small_detr())
    checkpoint = save_random_checkpoint(teacher_config, str(tmp_path / 'teacher.pth'), seed=1,
                                        initialized=True)
    cfg = Config.fromfile(REPO_ROOT / 'configs' / 'kd' /
                          'kd_dino-5scale_swin-l_dino-4scale_r50_8xb2-12e_coco.py')
    cfg.merge_from_dict(dict(model=dict(student=small_detr(), teacher=dict(
        config=teacher_config, checkpoint=checkpoint))))
    cfg.merge_from_dict(dict(model=dict(student=dict(dn_cfg=dict(group_cfg=dict(
        num_dn_queries=6))))))
    cfg.work_dir = str(tmp_path / 'work_dir')
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
    cfg.param_scheduler = []
    for split, loader in (('train_small', 'train_dataloader'), ('val', 'val_dataloader'),
                          ('val', 'test_dataloader')):
        cfg[loader].update(batch_size=4, num_workers=0, persistent_workers=False,
                           dataset=shapes_dataset(shapes_root, split, SMALL_PIPELINE))
        cfg[loader].pop('batch_sampler', None)
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = f'{shapes_root}/annotations/val.json'
    Runner.from_cfg(cfg).train()

    student_config = Config.fromfile(tmp_path / 'work_dir' / 'student_config.py')
    assert student_config.model.type == 'DINO'
    weights = load_checkpoint_weights_only(str(tmp_path / 'work_dir' / 'student_final.pth'))
    stock = build_model_from_config(student_config)
    stock.load_state_dict(weights['state_dict'], strict=True)
    student_config.work_dir = str(tmp_path / 'test_dir')
    student_config.load_from = str(tmp_path / 'work_dir' / 'student_final.pth')
    metrics = Runner.from_cfg(student_config).test()
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0


def test_a_loss_with_levels_compares_the_chosen_decoder_layers_only(tmp_path, shapes_root):
    """``levels=[-1]`` in a loss entry: KD on the last decoder layer's scores alone, next to KD on
    every layer (their sum)."""
    distiller = distiller_of(tmp_path, DINO, DINO, losses=dict(
        loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid'),
        loss_kd_last=dict(type='KDLoss', tau=1.0, activation='sigmoid', levels=[-1])))
    distiller.train()
    batch = distiller.data_preprocessor(batch_of(shapes_root, size=2), True)
    torch.manual_seed(3)
    losses = distiller(batch['inputs'], batch['data_samples'], mode='loss')
    torch.manual_seed(3)
    student_view, teacher_view = compared_views(distiller, batch)
    per_layer = [binary_kd_loss(s, t, 1.0)
                 for s, t in zip(student_view['logits'], teacher_view['logits'])]
    assert len(per_layer) == 2
    torch.testing.assert_close(losses['distill.loss_kd_last'], per_layer[-1])
    torch.testing.assert_close(losses['distill.loss_kd'], per_layer[0] + per_layer[1])


@pytest.mark.parametrize('levels', ['last', [], [1.0], True])
def test_levels_that_are_not_a_list_of_indices_are_refused_naming_the_field(tmp_path, levels):
    with pytest.raises(ValueError, match=r'model\.distill_losses\.loss_kd\.levels: expected a '
                                         'non-empty list of level indices'):
        distiller_of(tmp_path, DINO, DINO, losses=dict(loss_kd=dict(
            type='KDLoss', tau=1.0, activation='sigmoid', levels=levels)))


def test_levels_out_of_range_or_of_one_tensor_are_named_at_the_first_step(tmp_path,
                                                                          shapes_root):
    distiller = distiller_of(tmp_path, DINO, DINO, losses=dict(loss_kd=dict(
        type='KDLoss', tau=1.0, activation='sigmoid', levels=[5])))
    distiller.train()
    with pytest.raises(ValueError, match=r'loss_kd\.levels: \[5\] is out of range for 2 levels'):
        distill_step(distiller, batch_of(shapes_root, size=2))


def test_a_detr_pair_trains_a_step_under_cpu_bf16_autocast(tmp_path, shapes_root):
    """--amp on CPU: the student's step and its second decoding pass run under bf16 autocast; the
    class and box terms are float32 and finite, and reach the student's decoder."""

    distiller = distiller_of(tmp_path, DINO, DINO, losses=dict(
        loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid'),
        loss_box=dict(type='BoxDistillationLoss', student_output='boxes',
                      teacher_output='boxes')))
    distiller.train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = distill_step(distiller, batch_of(shapes_root, size=2))
    for key in ('distill.loss_kd', 'distill.loss_box'):
        assert losses[key].dtype == torch.float32 and torch.isfinite(losses[key]), key
    (losses['distill.loss_kd'] + losses['distill.loss_box']).backward()
    decoder_weight = next(distiller.student.decoder.layers[-1].parameters())
    assert decoder_weight.grad is not None and torch.isfinite(decoder_weight.grad).all()
    assert decoder_weight.grad.abs().sum() > 0
