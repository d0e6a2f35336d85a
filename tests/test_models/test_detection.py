"""Distilling mmdet detectors: dense-head and RoI-head adapters, sigmoid losses, real models."""

import math

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmkd_plugins.models.losses import DISTLoss, KDLoss, binary_kd_loss, dist_loss
from mmkd_plugins.models.task_adapters import flatten_levels
from mmkd_plugins.models.task_adapters.dense_head_adapter import class_branch_scores
from mmkd_plugins.models.teachers import build_model_from_config, load_model_config
from ..conftest import save_random_checkpoint, shapes_dataset
from ..support.classifiers import (assert_bf16_close, backbone_call_order,
                                   identical_inputs_dist_residual)
from ..support.detectors import (CASCADE, CASCADE_SMALL, FASTER, FASTER_RCNN_SMALL, RETINANET,
                                 batch_of, detector_cfg, distiller_for)
from ..support.loss_references import reference_binary_kd, reference_dist


@pytest.fixture(autouse=True)
def mmdet_scope():
    init_default_scope('mmdet')


def test_flatten_levels_gives_one_row_per_position_in_order():
    level = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)  # N C H W
    rows = flatten_levels([level, level[:, :, :1, :2]])
    assert [r.shape for r in rows] == [(16, 3), (4, 3)]
    n, h, w = 1, 1, 2
    assert torch.equal(rows[0][n * 8 + h * 4 + w], level[n, :, h, w])


def test_binary_kd_matches_the_bernoulli_kl_reference():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 4) * 2, torch.randn(5, 4) * 2
    tau = 2.0
    expected = reference_binary_kd(student, teacher, tau)
    assert binary_kd_loss(student, teacher, tau).item() == pytest.approx(expected, rel=1e-5)
    module = KDLoss(tau=tau, activation='sigmoid')
    assert module(student, teacher).item() == pytest.approx(expected, rel=1e-5)


def test_sigmoid_dist_uses_independent_sigmoids():
    torch.manual_seed(1)
    student, teacher = torch.randn(6, 5), torch.randn(6, 5)
    expected, _ = reference_dist(student, teacher, 1.0, 1.0, 1.0, 'sigmoid')
    got = DISTLoss(activation='sigmoid')(student, teacher).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_sigmoid_kd_weighs_rows_by_the_teachers_top_probability_and_unit_weights_leave_dist_as_is():
    teacher = torch.tensor([[8.0, -8.0], [0.0, 0.0]])  # a confident row and an unsure one
    student = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    per_row = [binary_kd_loss(student[i:i + 1], teacher[i:i + 1], 1.0).item() for i in range(2)]
    weights = [1 / (1 + math.exp(-8.0)), 0.5]
    expected = (weights[0] * per_row[0] + weights[1] * per_row[1]) / sum(weights)
    module = KDLoss(tau=1.0, activation='sigmoid', weight_by_teacher_confidence=True)
    assert module(student, teacher).item() == pytest.approx(expected, rel=1e-5)
    assert dist_loss(student, teacher, 1, 1, 1, 'sigmoid', torch.ones(2)).item() == (
        pytest.approx(dist_loss(student, teacher, 1, 1, 1, 'sigmoid').item()))


def test_retinanet_trains_with_dense_distillation_and_same_weights_give_zero(
        tmp_path, shapes_root):
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'retina.pth'))
    # Spread the freshly initialised class scores, so that DIST's eps residual of identical
    # inputs (eps / (‖ỹ‖² + eps) per row and column) is far below the tolerance.
    state = torch.load(checkpoint)
    state['state_dict']['bbox_head.retina_cls.weight'] *= 100
    torch.save(state, checkpoint)
    losses = dict(loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid'),
                  loss_dist=dict(type='DISTLoss', activation='sigmoid'))
    student = detector_cfg(RETINANET, init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    model = distiller_for(student, RETINANET, checkpoint, losses)
    model.init_weights()
    model.eval()
    data = model.data_preprocessor(batch_of(shapes_root), training=True)
    same = model(**data, mode='loss')
    teacher_levels = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    for student_level, teacher_level in zip(flatten_levels(
            model.student_recorder.outputs['bbox_head'][0]), teacher_levels):
        torch.testing.assert_close(student_level, teacher_level)
    assert same['distill.loss_kd'].item() == pytest.approx(0.0, abs=1e-5)
    assert same['distill.loss_dist'].item() == pytest.approx(sum(
        identical_inputs_dist_residual(level, 'sigmoid') for level in teacher_levels),
        rel=2e-2)  # float32 sums over a level's positions
    assert {'student.loss_cls', 'student.loss_bbox'} <= set(same)

    fresh = distiller_for(detector_cfg(RETINANET), RETINANET, checkpoint, losses)
    # a dense teacher's scores depend on the batch alone: it runs before the student
    assert backbone_call_order(fresh, data) == ['teacher', 'student']
    optim_wrapper = OptimWrapper(torch.optim.SGD(fresh.parameters(), lr=0.01))
    teacher_before = {k: v.clone() for k, v in fresh.teacher.state_dict().items()}
    log_vars = fresh.train_step(batch_of(shapes_root), optim_wrapper)
    assert float(log_vars['distill.loss_kd']) > 0 and float(log_vars['distill.loss_dist']) > 0
    assert all(torch.equal(v, teacher_before[k]) for k, v in fresh.teacher.state_dict().items())


def test_faster_rcnn_teacher_scores_the_students_sampled_proposals(tmp_path, shapes_root):
    base = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
    options = dict(model=FASTER_RCNN_SMALL)
    checkpoint = save_random_checkpoint(base, str(tmp_path / 'frcnn.pth'), options)
    model = distiller_for(detector_cfg(base, **FASTER_RCNN_SMALL), base, checkpoint,
                          dict(loss_dist=dict(type='DISTLoss')), cfg_options=options)
    teacher_rois = []
    model.teacher.roi_head.bbox_roi_extractor.register_forward_hook(
        lambda module, args, output: teacher_rois.append(args[1]))
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(batch_of(shapes_root), optim_wrapper)
    student_rois = model.student_recorder.inputs['roi_head.bbox_roi_extractor'][1]
    assert len(teacher_rois) == 1 and student_rois.shape[1] == 5
    assert torch.equal(teacher_rois[0], student_rois)
    assert 0 < float(log_vars['distill.loss_dist']) < float('inf')
    assert 'student.loss_rpn_cls' in log_vars and 'student.loss_cls' in log_vars
    # RoIs of images the teacher's features do not hold (what a multi-branch student made)
    # get a clear error, not a read past the features inside mmcv's RoIAlign
    student_rois[:, 0] = 3 * len(batch_of(shapes_root)['inputs'])
    data = model.data_preprocessor(batch_of(shapes_root), training=True)
    with pytest.raises(ValueError, match=r"model\.student: its RoIs index 13 images but the "
                       r"teacher's features hold 4"):
        model.run_teacher(data['inputs'], data['data_samples'])
    # it scores the student's RoIs of the step, so it runs after the student
    assert backbone_call_order(model, data) == ['student', 'teacher']


def test_bf16_teachers_give_float32_scores_near_the_float32_ones(tmp_path, shapes_root):
    base = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
    options = dict(model=FASTER_RCNN_SMALL)
    checkpoints = {RETINANET: save_random_checkpoint(RETINANET, str(tmp_path / 'r.pth')),
                   base: save_random_checkpoint(base, str(tmp_path / 'f.pth'), options)}
    for config, checkpoint in checkpoints.items():
        small = FASTER_RCNN_SMALL if config == base else {}
        model = distiller_for(detector_cfg(config, **small), config, checkpoint,
                              dict(loss_kd=dict(type='KDLoss')),
                              cfg_options=options if config == base else None)
        data = model.data_preprocessor(batch_of(shapes_root), training=True)
        model.run_student(data['inputs'], data['data_samples'])  # the RoIs the teacher scores
        expected = model.run_teacher(data['inputs'], data['data_samples'])['logits']
        model.teacher_source.bf16 = True
        got = model.run_teacher(data['inputs'], data['data_samples'])['logits']
        for got_level, expected_level in zip(got, expected):  # levels, or RoI rows
            assert_bf16_close(got_level, expected_level)


def test_a_teacher_head_with_other_num_classes_is_refused_naming_both_counts(tmp_path):
    options = dict(model=dict(bbox_head=dict(num_classes=5)))
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'r5.pth'), options)
    with pytest.raises(ValueError, match=r'num_classes: teacher 5 vs student 3'):
        distiller_for(detector_cfg(RETINANET), RETINANET, checkpoint,
                      dict(loss_kd=dict(type='KDLoss', activation='sigmoid')),
                      cfg_options=options)


def test_classifier_teacher_for_a_detector_is_refused(teacher_checkpoint):
    from ..conftest import TEACHER_CONFIG
    with pytest.raises(TypeError, match=r'student is a one-stage detector but the teacher is '
                       r'a ImageClassifier'):
        distiller_for(detector_cfg(RETINANET), TEACHER_CONFIG, teacher_checkpoint,
                      dict(loss_kd=dict(type='KDLoss')))


@pytest.mark.parametrize('config', ['mmdet::atss/atss_r50_fpn_1x_coco.py',
                                    'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
                                    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'])
def test_other_dense_heads_train_one_step(tmp_path, shapes_root, config):
    small = dict(backbone=dict(depth=18, init_cfg=None),
                 neck=dict(in_channels=[64, 128, 256, 512], out_channels=32),
                 bbox_head=dict(num_classes=3, in_channels=32, feat_channels=32,
                                stacked_convs=1))
    options = dict(model=small)
    checkpoint = save_random_checkpoint(config, str(tmp_path / 'teacher.pth'), options)
    losses = dict(loss_dist=dict(type='DISTLoss', activation='sigmoid',
                                 weight_by_teacher_confidence=True))
    model = distiller_for(detector_cfg(config, **small), config, checkpoint, losses,
                          cfg_options=options)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(batch_of(shapes_root, size=2), optim_wrapper)
    assert 0 < float(log_vars['distill.loss_dist']) < float('inf')


def test_softmax_per_anchor_variant_splits_rows_anchor_major():
    torch.manual_seed(2)
    student, teacher = torch.randn(4, 3 * 5), torch.randn(4, 3 * 5)  # 3 anchors x 5 classes
    per_anchor = DISTLoss(anchors_per_position=3)(student, teacher)
    rows = [(student[p, a * 5:(a + 1) * 5], teacher[p, a * 5:(a + 1) * 5])
            for p in range(4) for a in range(3)]
    expected = dist_loss(torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows]),
                         1.0, 1.0, 1.0)
    assert per_anchor.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize('config', ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
                                    'mmdet::atss/atss_r50_fpn_1x_coco.py',
                                    'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
                                    'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'])
def test_teacher_class_branch_alone_gives_the_full_heads_scores(config):
    """The teacher skips the box branch; its class maps stay those of the whole head."""
    torch.manual_seed(0)
    head = build_model_from_config(load_model_config(config, 'test')).bbox_head.eval()
    channels = head.in_channels
    features = [torch.randn(2, channels, size, size) for size in (16, 8, 4, 2, 1)]
    with torch.no_grad():
        expected = head(features)[0]
        scores = class_branch_scores(head, features)
    assert scores is not None and len(scores) == len(expected)
    for got, want in zip(scores, expected):
        assert torch.equal(got, want)


@pytest.mark.parametrize('module', ['bbox_head.retina_reg', 'bbox_head.reg_convs.0',
                                    'bbox_head.loss_cls'])
def test_a_module_the_dense_teacher_skips_is_refused_at_build_time(tmp_path, module):
    """The teacher computes a RetinaNet head's class branch only: a loss on its box branch would
    fail at the first step with a bare KeyError."""
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'retina.pth'))
    losses = dict(loss_feat=dict(type='KDLoss', student_output=module, teacher_output=module))
    with pytest.raises(ValueError, match=rf"model\.distill_losses\.loss_feat\.teacher_output: "
                       rf"the teacher never runs '{module}'; .* only their class branch"):
        distiller_for(detector_cfg(RETINANET), RETINANET, checkpoint, losses)
    class_branch = dict(loss_feat=dict(type='KDLoss', activation='sigmoid',
                                       student_output='bbox_head.retina_cls',
                                       teacher_output='bbox_head.retina_cls'))
    distiller_for(detector_cfg(RETINANET), RETINANET, checkpoint, class_branch)


def test_the_two_stage_teachers_rpn_is_refused_at_build_time(tmp_path):
    base = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
    options = dict(model=FASTER_RCNN_SMALL)
    checkpoint = save_random_checkpoint(base, str(tmp_path / 'frcnn.pth'), options)
    losses = dict(loss_rpn=dict(type='KDLoss', student_output='rpn_head.rpn_cls',
                                teacher_output='rpn_head.rpn_cls'))
    with pytest.raises(ValueError, match=r"loss_rpn\.teacher_output: the teacher never runs "
                       r"'rpn_head\.rpn_cls'; .* no RPN"):
        distiller_for(detector_cfg(base, **FASTER_RCNN_SMALL), base, checkpoint, losses,
                      cfg_options=options)


def test_a_tridentnet_student_is_refused_at_build_time(tmp_path):
    """TridentNet trains 3 branches per image (3 RoI sets per image, batch indices up to 3B) while
    the teacher, in eval mode, has features for B images: mmcv's RoIAlign read past them and the
    process died (exit -11) in the zoo sweep."""
    options = dict(model=FASTER_RCNN_SMALL)
    base = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
    checkpoint = save_random_checkpoint(base, str(tmp_path / 'frcnn.pth'), options)
    student = detector_cfg('mmdet::tridentnet/tridentnet_r50-caffe_1x_coco.py',
                           backbone=dict(init_cfg=None))
    with pytest.raises(TypeError, match=r'model\.student: a TridentFasterRCNN student '
                       r'\(TridentRoIHead\) trains its 3 branches on every image'):
        distiller_for(student, base, checkpoint, dict(loss_kd=dict(type='KDLoss')),
                      cfg_options=options)


@pytest.mark.parametrize('teacher_config,teacher_small,teacher_stage', [
    (FASTER, FASTER_RCNN_SMALL, None), (CASCADE, CASCADE_SMALL, 2)],
    ids=['Faster R-CNN teacher', 'Cascade R-CNN teacher'])
def test_a_cascade_rcnn_student_is_distilled_at_its_last_stage(
        tmp_path, shapes_root, teacher_config, teacher_small, teacher_stage):
    """The last stage (the refined boxes at the highest IoU) is compared: the student's last box
    head on its last-stage sampled RoIs, against the teacher's stage of the same index (a Cascade
    teacher's last, a Faster R-CNN's only head) on exactly those RoIs."""
    options = dict(model=teacher_small)
    checkpoint = save_random_checkpoint(teacher_config, str(tmp_path / 'teacher.pth'), options)
    model = distiller_for(detector_cfg(CASCADE, **CASCADE_SMALL), teacher_config, checkpoint,
                          dict(loss_kd=dict(type='KDLoss', tau=1.0)), cfg_options=options)
    extractor = model.teacher.roi_head.bbox_roi_extractor
    box_head = model.teacher.roi_head.bbox_head
    if teacher_stage is not None:
        extractor, box_head = extractor[teacher_stage], box_head[teacher_stage]
    seen_rois, teacher_logits = [], []
    extractor.register_forward_hook(lambda module, args, output: seen_rois.append(args[1]))
    box_head.register_forward_hook(lambda module, args, output: teacher_logits.append(output[0]))
    data = model.data_preprocessor(batch_of(shapes_root), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    student_rois = model.student_recorder.inputs['roi_head.bbox_roi_extractor.2'][1]
    student_logits = model.student_recorder.outputs['roi_head.bbox_head.2'][0]
    assert len(seen_rois) == 1 and torch.equal(seen_rois[0], student_rois)  # last-stage RoIs
    expected = KDLoss(tau=1.0)(student_logits, teacher_logits[0])
    torch.testing.assert_close(losses['distill.loss_kd'], expected)
    assert {'student.s0.loss_cls', 'student.s2.loss_cls'} <= set(losses)  # every stage trains
    assert 0 < float(losses['distill.loss_kd']) < float('inf')


def test_a_multi_stage_roi_head_other_than_cascade_is_refused_at_build_time(tmp_path):
    student = detector_cfg('mmdet::htc/htc_r50_fpn_1x_coco.py',
                           backbone=dict(depth=18, init_cfg=None),
                           neck=dict(in_channels=[64, 128, 256, 512]))
    with pytest.raises(TypeError, match=r'model\.student: a HybridTaskCascade student '
                       r'\(HybridTaskCascadeRoIHead, 3 RoI stages\) is not supported'):
        distiller_for(student, FASTER, str(tmp_path / 'unused.pth'),
                      dict(loss_dist=dict(type='DISTLoss')),
                      cfg_options=dict(model=FASTER_RCNN_SMALL))


TOOD = 'mmdet::tood/tood_r50_fpn_1x_coco.py'
TOOD_SMALL = dict(backbone=dict(depth=18, init_cfg=None),
                  neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
                  bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=2,
                                 num_classes=3))


# CenterNet (the original, not CenterNet-Update): its forward applies the sigmoid to the heatmaps
CENTERNET = 'mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py'
CENTERNET_SMALL = dict(backbone=dict(init_cfg=None), neck=dict(num_deconv_filters=(64, 32, 16)),
                       bbox_head=dict(num_classes=3, in_channels=16, feat_channels=16))


@pytest.mark.parametrize('config,small,predicts_with_a_sigmoid', [
    (RETINANET, {}, True), (TOOD, TOOD_SMALL, False), (CENTERNET, CENTERNET_SMALL, False)],
    ids=['logits (RetinaNet)', 'probabilities (TOOD)', 'probabilities (CenterNet heatmaps)'])
def test_compared_scores_are_those_the_head_predicts_with(tmp_path, shapes_root, config, small,
                                                          predicts_with_a_sigmoid):
    """RetinaNet's maps are logits (its predict applies a sigmoid); TOOD's and CenterNet's are
    probabilities already (their predict uses them as they are).

    Through the losses' sigmoid, the compared teacher and student scores must be exactly those the
    heads predict with (CenterNet's failed: its heatmaps passed a second sigmoid).
    """
    MessageHub.get_current_instance().update_info('epoch', 0)  # TOOD's loss reads it
    options = dict(model=small)
    checkpoint = save_random_checkpoint(config, str(tmp_path / 'teacher.pth'), options)
    model = distiller_for(detector_cfg(config, **small), config, checkpoint,
                          dict(loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid')),
                          cfg_options=options)
    model.eval()
    data = model.data_preprocessor(batch_of(shapes_root), training=True)
    _, student_outputs = model.run_student(data['inputs'], data['data_samples'])
    teacher_logits = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    for detector, compared in ((model.teacher, teacher_logits),
                               (model.student, student_outputs['logits'])):
        maps = flatten_levels(detector.bbox_head(detector.extract_feat(data['inputs']))[0])
        predicted = [level.sigmoid() for level in maps] if predicts_with_a_sigmoid else maps
        for got, expected in zip(compared, predicted):
            torch.testing.assert_close(got.sigmoid(), expected, rtol=1e-4, atol=1e-5)


def test_a_padded_batch_reaches_the_teacher_as_its_own_preprocessing_gives_it(tmp_path,
                                                                             shapes_root):
    """A teacher normalized otherwise than its ImageNet-normalized student, images of 60×60 padded
    to 64×64 after normalizing: the teacher must see its own pad value (0), not the re-normalized
    student pad ((mean_s − mean_t) / std_t)."""
    other = dict(data_preprocessor=dict(mean=[100.0, 110.0, 120.0], std=[50.0, 60.0, 70.0],
                                        bgr_to_rgb=True, pad_size_divisor=32))
    options = dict(model=other)
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'other.pth'), options)
    model = distiller_for(detector_cfg(RETINANET), RETINANET, checkpoint,
                          dict(loss_kd=dict(type='KDLoss', activation='sigmoid')),
                          cfg_options=options)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(60, 60), keep_ratio=True), dict(type='PackDetInputs')]
    loader = Runner.build_dataloader(dict(
        batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        dataset=shapes_dataset(shapes_root, 'train', pipeline)))
    batch = next(iter(loader))
    student = model.data_preprocessor(batch, training=True)
    assert student['inputs'].shape[-2:] == (64, 64)  # padded after normalizing
    own = model.teacher.data_preprocessor(batch, training=True)['inputs']
    got = model.teacher_source.inputs(student['inputs'], student['data_samples'])
    torch.testing.assert_close(got, own, rtol=1e-5, atol=1e-3)
    assert torch.all(got[:, :, 60:, :] == 0) and torch.all(got[:, :, :, 60:] == 0)


NAS_FPN = 'mmdet::nas_fpn/retinanet_r50_nasfpn_crop640-50e_coco.py'
NAS_FPN_SMALL = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64, stack_times=1),
    bbox_head=dict(num_classes=3, in_channels=64, feat_channels=64, stacked_convs=2))


def test_a_teacher_that_needs_coarser_padding_than_the_student_is_refused(tmp_path,
                                                                         shapes_root):
    """NAS-FPN's config pads batches to a multiple of 128 because its cells merge levels of.

    exactly halved sizes; on a 160-px batch (a multiple of the student's 32) its stride-64 and
    -128 maps are 2×2 and 1×1 where the student's FPN gives 3×3 and 2×2. The pair must be
    refused at build time with the field to change; with that change it trains.
    """
    options = dict(model=NAS_FPN_SMALL)
    checkpoint = save_random_checkpoint(NAS_FPN, str(tmp_path / 'nas.pth'), options)
    losses = dict(loss_kd=dict(type='KDLoss', activation='sigmoid'))
    with pytest.raises(ValueError, match=r'model.student.data_preprocessor.pad_size_divisor: '
                       r'the teacher pads batches to a multiple of 128, the student to 32'):
        distiller_for(detector_cfg(RETINANET), NAS_FPN, checkpoint, losses,
                      cfg_options=options)
    student = detector_cfg(RETINANET, data_preprocessor=dict(pad_size_divisor=128))
    model = distiller_for(student, NAS_FPN, checkpoint, losses, cfg_options=options)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(160, 160), keep_ratio=True),
                dict(type='PackDetInputs')]
    batch = next(iter(Runner.build_dataloader(dict(
        batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='pseudo_collate'),
        dataset=shapes_dataset(shapes_root, 'train', pipeline)))))
    data = model.data_preprocessor(batch, training=True)
    assert data['inputs'].shape[-2:] == (256, 256)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(losses['distill.loss_kd']) and losses['distill.loss_kd'] > 0
