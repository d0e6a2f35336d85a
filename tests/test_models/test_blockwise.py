"""Block-wise distillation: stage splits, connectors, hybrids and the loss, on real models."""

import pytest
import torch
from mmengine.hub import get_config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from mmkd_plugins.checkpoint import extract_student_state_dict
from mmkd_plugins.models import BlockwiseDistiller, ConvBNConnector, kd_loss, split_backbone
from mmkd_plugins.models.blockwise.stage_pairing import pair_stages
from mmkd_plugins.models.blockwise.state_layouts import StateLayout
from mmkd_plugins.models.teachers import build_model_from_config, load_model_config
from ..conftest import STUDENT_CONFIG, TEACHER_CONFIG, save_random_checkpoint
from ..support.classifiers import KD, backbone_call_order, make_batch, student_model_cfg
from ..support.detectors import (CASCADE, CASCADE_SMALL, FASTER, FASTER_RCNN_SMALL, RETINANET,
                                 batch_of, detector_cfg)

IDENTITY = dict(connector=dict(type='IdentityConnector'))
SIGMOID_KD = dict(loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid'))


def build_blockwise(teacher_checkpoint, student=None, teacher_config=TEACHER_CONFIG, **kwargs):
    return BlockwiseDistiller(
        student=student or student_model_cfg(),
        teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
        distill_losses=kwargs.pop('distill_losses', KD), **kwargs)


def same_network_distiller(config, checkpoint, **kwargs):
    """Student and teacher of one architecture with the teacher's weights, both in eval mode."""
    pretrained = dict(init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    if config == RETINANET:
        student = detector_cfg(config, **pretrained)
        kwargs.setdefault('distill_losses', SIGMOID_KD)
    else:
        student = dict(student_model_cfg(config), **pretrained)
    model = build_blockwise(checkpoint, student=student, teacher_config=config, **kwargs)
    model.init_weights()
    return model.eval()


def hybrid_and_teacher_logits(model, data):
    _, outputs = model.run_student(data['inputs'], data['data_samples'])
    features = {stage: model.student_recorder.outputs[name]
                for stage, name in model.hybrids.student_modules.items()}
    hybrids = model.hybrids(features, model.teacher, data['inputs'], data['data_samples'])
    return hybrids, model.run_teacher(data['inputs'], data['data_samples'])['logits']


def test_resnet_and_mobilenet_v2_split_into_four_stages():
    resnet = build_model_from_config(load_model_config(TEACHER_CONFIG, 'test'))
    split = split_backbone(resnet.backbone, 'backbone')
    assert split.stages == (('layer1', ), ('layer2', ), ('layer3', ), ('layer4', ))
    assert split.stem == ('conv1', 'bn1', 'relu')  # ResNet_CIFAR: no max pooling
    mobilenet = build_model_from_config(
        load_model_config('mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py', 'test'))
    split = split_backbone(mobilenet.backbone, 'backbone')
    assert split.stages == (('layer1', 'layer2'), ('layer3', ), ('layer4', 'layer5'),
                            ('layer6', 'layer7', 'conv2'))
    assert split.stem == ('conv1', )


def test_a_same_network_with_identity_connectors_gives_the_teachers_logits(tmp_path):
    checkpoint = save_random_checkpoint(TEACHER_CONFIG, str(tmp_path / 'same.pth'), seed=5)
    model = same_network_distiller(TEACHER_CONFIG, checkpoint, hybrids=IDENTITY)
    data = model.data_preprocessor(make_batch(), training=False)
    hybrids, teacher_logits = hybrid_and_teacher_logits(model, data)
    assert [hybrid.stage for hybrid in hybrids] == [1, 2, 3, 4]
    assert teacher_logits.abs().max() > 1e-3  # not a trivially zero comparison
    for hybrid in hybrids:
        torch.testing.assert_close(hybrid.logits, teacher_logits, rtol=1e-5, atol=1e-6)


def test_a_same_retinanet_with_identity_connectors_gives_the_teachers_class_maps(
        tmp_path, shapes_root):
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'det.pth'), seed=2)
    model = same_network_distiller(RETINANET, checkpoint, hybrids=IDENTITY)
    data = model.data_preprocessor(batch_of(shapes_root), training=False)
    hybrids, teacher_maps = hybrid_and_teacher_logits(model, data)
    assert len(hybrids) == 4 and len(teacher_maps) == 5  # 4 stages; 5 FPN levels
    for hybrid in hybrids:
        for hybrid_level, teacher_level in zip(hybrid.logits, teacher_maps):
            torch.testing.assert_close(hybrid_level, teacher_level, rtol=1e-5, atol=1e-5)
        assert {'loss_cls', 'loss_bbox'} <= set(hybrid.task_losses)


FCOS_NORM_ON_BBOX = ('mmdet::fcos/fcos_r18_fpn_gn-head-center-normbbox-centeronreg-giou_'
                     '8xb8-amp-lsj-200e_coco.py')
FCOS_SMALL = dict(backbone=dict(init_cfg=None), neck=dict(out_channels=64),
                  bbox_head=dict(in_channels=64, feat_channels=64, num_classes=3))


def test_a_hybrids_task_loss_takes_the_teacher_heads_training_outputs(tmp_path, shapes_root):
    """FCOS with norm_on_bbox multiplies its box maps by the stride in eval mode, where the
    frozen teacher is: the hybrids' box loss must see the maps as in training. With the
    teacher's weights, identity connectors and the student's batch norms in eval mode, hybrid
    N_4 is the student, so its task losses are the student's own."""
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(FCOS_NORM_ON_BBOX, str(tmp_path / 'fcos.pth'),
                                        dict(model=FCOS_SMALL), seed=3)
    model = BlockwiseDistiller(
        student=detector_cfg(FCOS_NORM_ON_BBOX, **FCOS_SMALL,
                             init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
        teacher=dict(config=FCOS_NORM_ON_BBOX, checkpoint=checkpoint,
                     cfg_options=dict(model=FCOS_SMALL)),
        distill_losses=SIGMOID_KD, hybrids=dict(IDENTITY, stages=[4]))
    model.init_weights()
    model.train()
    for module in model.student.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    data = model.data_preprocessor(batch_of(shapes_root, scale=128), training=True)
    losses = model.loss(**data)
    assert model.teacher.bbox_head.training is False
    for name in ('loss_cls', 'loss_bbox', 'loss_centerness'):
        assert losses[f'student.{name}'] > 0
        torch.testing.assert_close(losses[f'hybrid4.{name}'], losses[f'student.{name}'],
                                   rtol=1e-4, atol=1e-5, msg=name)


def test_fpn_hybrids_connect_every_stage_the_neck_reads(tmp_path, shapes_root):
    """RetinaNet's FPN reads stages 2-4 only: a stage-3 hybrid needs C_2 and C_3, not C_1."""
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'det.pth'))
    model = same_network_distiller(RETINANET, checkpoint, hybrids=dict(stages=[3]))
    assert model.hybrids.connected_stages == (2, 3)
    assert set(model.hybrids.connectors) == {'stage2', 'stage3'}
    model.train()
    before = {name: connector.conv.weight.detach().clone()
              for name, connector in model.hybrids.connectors.items()}
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(batch_of(shapes_root), optim_wrapper)
    assert {'hybrid3.loss_cls', 'hybrid3.loss_bbox', 'hybrid3.distill.loss_kd'} <= set(log_vars)
    for name, connector in model.hybrids.connectors.items():  # both trained by the one hybrid
        assert not torch.equal(connector.conv.weight, before[name]), name


def test_the_teacher_stays_bit_identical_and_gradients_reach_student_stage_1(teacher_checkpoint):
    model = build_blockwise(teacher_checkpoint)
    teacher_before = {key: value.clone() for key, value in model.teacher.state_dict().items()}
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    for step in range(3):
        log_vars = model.train_step(make_batch(seed=step), optim_wrapper)
    assert all(torch.isfinite(value) for value in log_vars.values())
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    assert all(parameter.grad is None for parameter in model.teacher.parameters())

    # Gradient of one hybrid term alone: it flows through the frozen teacher stages 2-4 back
    # into connector C_1 and the student's stage 1.
    data = model.data_preprocessor(make_batch(), training=True)
    # the whole teacher (its logits depend on the batch alone) runs before the student's
    # forward; then each hybrid runs the teacher's forward from its stage on the student's
    assert backbone_call_order(model, data) == ['teacher', 'student'] + ['teacher'] * 4
    hybrid_term = model.loss(**data)['hybrid1.distill.loss_kd']
    stage_1 = list(model.student.backbone.layer1.parameters())
    gradients = torch.autograd.grad(hybrid_term, stage_1)
    assert all(grad.abs().sum() > 0 for grad in gradients)
    assert not any(parameter.requires_grad for parameter in model.teacher.parameters())


def test_connector_shapes_are_inferred_for_resnet50_to_mobilenet_v2(tmp_path):
    teacher_config = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'
    checkpoint = save_random_checkpoint(teacher_config, str(tmp_path / 'r50.pth'))
    student = get_config('mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py').model
    model = build_blockwise(checkpoint, student=dict(student), teacher_config=teacher_config)
    expected = {  # (teacher channels, student channels): ResNet-50 vs MobileNetV2 stage ends
        'stage1': (256, 24), 'stage2': (512, 32), 'stage3': (1024, 96), 'stage4': (2048, 1280)}
    for name, (teacher_channels, student_channels) in expected.items():
        connector = model.hybrids.connectors[name]
        assert isinstance(connector, ConvBNConnector)
        assert connector.conv.weight.shape == (teacher_channels, student_channels, 1, 1)
        assert connector.scale_factor == 1.0  # both reach strides 4, 8, 16, 32
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(make_batch(size=32, num_classes=1000), optim_wrapper)
    assert 0 < float(log_vars['hybrid1.distill.loss_kd']) < float('inf')


def test_connectors_resize_when_the_stage_strides_differ(teacher_checkpoint):
    """A student with a stride-2 stem (ImageNet ResNet-18) and the stride-1 CIFAR teacher."""
    student = get_config('mmpretrain::resnet/resnet18_8xb32_in1k.py').model
    student.head.num_classes = 10
    model = build_blockwise(teacher_checkpoint, student=dict(student),
                            hybrids=dict(stages=[2]))
    connector = model.hybrids.connectors['stage2']
    assert connector.scale_factor == 4.0  # student stride 8 vs teacher stride 2
    data = model.data_preprocessor(make_batch(size=32), training=True)
    losses = model.loss(**data)
    assert torch.isfinite(losses['hybrid2.distill.loss_kd'])


def maps(*strides):
    """The layouts of (B, C, H, W) stage states at ``strides``."""
    return [StateLayout(tokens=False, stride=stride) for stride in strides]


def test_a_default_pairing_that_is_not_one_to_one_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"model\.hybrids\.stage_pairs: the student stages' "
                       r'strides \[4\.0, 8\.0, 8\.0\] and the teacher\'s \[4\.0, 8\.0, 16\.0, '
                       r'32\.0\] pair several student stages with one teacher stage'):
        pair_stages(maps(4., 8., 8.), maps(4., 8., 16., 32.), None, 'model.hybrids.stage_pairs')
    with pytest.raises(ValueError, match=r"model\.hybrids\.stage_pairs: the student backbone "
                       r"has 3 stages and the teacher's 4, and some of their states are tokens on "
                       r'no grid the probe found'):
        pair_stages([None] * 3, maps(4., 8., 16., 32.), None, 'model.hybrids.stage_pairs')
    assert pair_stages(maps(8., 16., 32.), maps(4., 8., 16., 32.), None, 'f') == {
        1: 2, 2: 3, 3: 4}
    # token grids pair by their stride as maps do (a Swin's stages and a 3-stage CNN)
    grids = [StateLayout(tokens=True, stride=stride, grid_index=1) for stride in (4., 8., 16., 32.)]
    assert pair_stages(maps(8., 16., 32.), grids, None, 'f') == {1: 2, 2: 3, 3: 4}


def test_a_teacher_stage_its_neck_reads_must_be_paired(tmp_path):
    """RetinaNet's FPN reads stages 2-4: a hybrid through teacher stage 3 needs stage 2 paired."""
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'det.pth'), seed=2)
    with pytest.raises(ValueError, match=r"model\.hybrids\.stage_pairs: the teacher's neck and "
                       r'head read its stages \[2, 3, 4\], and no student stage is paired with '
                       r'\[2\] \(pairs \[\(1, 1\), \(3, 3\)\]\)'):
        same_network_distiller(RETINANET, checkpoint, hybrids=dict(stage_pairs=[[1, 1], [3, 3]]))


def three_stage_student(checkpoint=None, strides=(1, 2, 2)):
    """The teacher's CIFAR ResNet-18 cut after its third stage (its head on that stage's 128
    channels), from the teacher's weights when ``checkpoint`` is given."""
    cfg = student_model_cfg(TEACHER_CONFIG)
    cfg['backbone'] = dict(cfg['backbone'], num_stages=3, strides=strides, dilations=(1, 1, 1),
                           out_indices=(2, ))
    cfg['head'] = dict(cfg['head'], in_channels=128)
    if checkpoint is not None:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint)
    return cfg


def test_a_student_with_fewer_stages_feeds_the_teacher_stages_of_the_same_stride(tmp_path):
    """The teacher's own first three stages as a 3-stage student, identity connectors: stage i feeds
    teacher stage i (the same stride), and each hybrid gives the teacher's logits."""
    checkpoint = save_random_checkpoint(TEACHER_CONFIG, str(tmp_path / 'teacher.pth'), seed=5)
    model = build_blockwise(checkpoint, student=three_stage_student(checkpoint),
                            hybrids=IDENTITY)
    model.init_weights()
    model.eval()
    assert model.hybrids.pairs == {1: 1, 2: 2, 3: 3}
    data = model.data_preprocessor(make_batch(), training=False)
    hybrids, teacher_logits = hybrid_and_teacher_logits(model, data)
    assert [hybrid.stage for hybrid in hybrids] == [1, 2, 3]
    assert teacher_logits.abs().max() > 1e-3
    for hybrid in hybrids:
        torch.testing.assert_close(hybrid.logits, teacher_logits, rtol=1e-5, atol=1e-6)


def test_stages_pair_by_the_nearest_stride_and_the_hybrids_train(teacher_checkpoint):
    """A 3-stage student at strides 2, 4, 8 against the teacher's 1, 2, 4, 8: its stages feed
    teacher stages 2, 3, 4 through connectors of the paired channels."""
    model = build_blockwise(teacher_checkpoint, student=three_stage_student(strides=(2, 2, 2)))
    assert model.hybrids.pairs == {1: 2, 2: 3, 3: 4}
    channels = {name: tuple(connector.conv.weight.shape[:2])
                for name, connector in model.hybrids.connectors.items()}
    assert channels == {'stage1': (64, 32), 'stage2': (128, 64), 'stage3': (256, 128)}
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(make_batch(), optim_wrapper)
    assert all(torch.isfinite(value) for value in log_vars.values())
    data = model.data_preprocessor(make_batch(), training=True)
    hybrid_term = model.loss(**data)['hybrid1.distill.loss_kd']
    gradients = torch.autograd.grad(hybrid_term, list(model.student.backbone.layer1.parameters()))
    assert all(grad.abs().sum() > 0 for grad in gradients)


def test_named_stage_pairs_choose_the_hybrids(teacher_checkpoint):
    model = build_blockwise(teacher_checkpoint, hybrids=dict(stage_pairs=[[1, 2], [3, 4]]))
    assert model.hybrids.pairs == {1: 2, 3: 4} and model.hybrids.stages == (1, 3)
    data = model.data_preprocessor(make_batch(), training=True)
    losses = model.loss(**data)
    assert {key for key in losses if key.startswith('hybrid')} >= {
        'hybrid1.distill.loss_kd', 'hybrid3.distill.loss_kd'}
    assert not any(key.startswith(('hybrid2.', 'hybrid4.')) for key in losses)


@pytest.mark.parametrize('hybrids, match', [
    (dict(stage_pairs=[[2, 2], [1, 3]]), r'model\.hybrids\.stage_pairs: expected \[\[student '
     r'stage, teacher stage\], \.\.\.\] with student stages in 1\.\.4 and teacher stages in '
     r'1\.\.4, both increasing; got \[\[2, 2\], \[1, 3\]\]'),
    (dict(stage_pairs=[[1, 5]]), r'model\.hybrids\.stage_pairs: expected .* teacher stages in '
     r'1\.\.4'),
    (dict(stage_pairs=[[1, 1], [3, 3]], stages=[2]), r'model\.hybrids\.stages: expected '
     r'student stages paired with a teacher stage, of \(1, 3\), got \[2\]'),
])
def test_bad_stage_pairs_are_refused_naming_the_field(teacher_checkpoint, hybrids, match):
    with pytest.raises(ValueError, match=match):
        build_blockwise(teacher_checkpoint, hybrids=hybrids)


def test_loss_terms_match_alpha_beta_gamma_and_halving_weights(teacher_checkpoint):
    model = build_blockwise(teacher_checkpoint, alpha=0.5, beta=2.0, gamma=3.0,
                            hybrids=dict(weights='halving'))
    model.eval()  # deterministic BatchNorm, so the terms can be recomputed below
    data = model.data_preprocessor(make_batch(), training=False)
    losses = model.loss(**data)
    hybrids, teacher_logits = hybrid_and_teacher_logits(model, data)
    student_logits = model.student(data['inputs'], mode='tensor')
    ensemble = torch.stack([hybrid.logits for hybrid in hybrids]).mean(dim=0)

    def kd(logits, target):
        return kd_loss(logits, target, tau=4.0)

    torch.testing.assert_close(losses['distill.loss_kd'], 2.0 * kd(student_logits,
                                                                   teacher_logits))
    torch.testing.assert_close(losses['cross.loss_kd'], 3.0 * kd(student_logits, ensemble))
    for hybrid in hybrids:
        weight = 0.5**(4 - hybrid.stage)
        prefix = f'hybrid{hybrid.stage}.'
        torch.testing.assert_close(losses[prefix + 'distill.loss_kd'],
                                   2.0 * weight * kd(hybrid.logits, teacher_logits))
        torch.testing.assert_close(losses[prefix + 'cross.loss_kd'],
                                   3.0 * weight * kd(hybrid.logits, ensemble))
        torch.testing.assert_close(losses[prefix + 'loss'],
                                   0.5 * weight * hybrid.task_losses['loss'])
    assert set(losses) == {'student.loss', 'distill.loss_kd', 'cross.loss_kd'} | {
        f'hybrid{stage}.{term}' for stage in range(1, 5)
        for term in ('loss', 'distill.loss_kd', 'cross.loss_kd')}


def test_the_ensemble_target_is_detached_unless_asked(teacher_checkpoint):
    for detach in (True, False):
        model = build_blockwise(teacher_checkpoint, detach_ensemble=detach,
                                hybrids=dict(stages=[4]))
        data = model.data_preprocessor(make_batch(), training=True)
        cross = model.loss(**data)['cross.loss_kd']
        connector = model.hybrids.connectors['stage4'].conv.weight
        (grad, ) = torch.autograd.grad(cross, [connector], allow_unused=True)
        # The student's cross term reaches the connector only through the ensemble target.
        assert (grad is None) == detach


def test_connectors_are_checkpointed_and_the_export_is_the_stock_student(teacher_checkpoint):
    model = build_blockwise(teacher_checkpoint)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    model.train_step(make_batch(), optim_wrapper)
    state = model.state_dict()
    connector_keys = [key for key in state if key.startswith('hybrids.connectors.')]
    assert {key.split('.')[2] for key in connector_keys} == {f'stage{i}' for i in range(1, 5)}
    assert not any(key.startswith('teacher.') for key in state)
    fresh = build_blockwise(teacher_checkpoint)
    fresh.load_state_dict(state, strict=True)
    for key in connector_keys:  # includes the BatchNorm running statistics
        assert torch.equal(fresh.state_dict()[key], state[key]), key

    student = build_model_from_config(load_model_config(STUDENT_CONFIG, 'test'))
    student.load_state_dict(extract_student_state_dict(state), strict=True)


def test_a_head_with_deformable_convolutions_gets_a_probe_it_accepts(tmp_path):
    """DDOD's head runs mmcv's deformable convolutions, which refuse maps smaller than their 3×3
    kernel: the build-time probe must give every FPN level (P7: stride 128) at least 3×3 (a 128-px
    probe failed with 'input image is smaller than kernel')."""
    init_default_scope('mmdet')
    config = 'mmdet::ddod/ddod_r50_fpn_1x_coco.py'
    small = dict(backbone=dict(depth=18, init_cfg=None),
                 neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
                 bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=1,
                                num_classes=3))
    checkpoint = save_random_checkpoint(config, str(tmp_path / 'ddod.pth'),
                                        dict(model=small))
    model = BlockwiseDistiller(
        student=detector_cfg(config, **small),
        teacher=dict(config=config, checkpoint=checkpoint, cfg_options=dict(model=small)),
        distill_losses=SIGMOID_KD)
    assert model.hybrids.stages == (1, 2, 3, 4)


def test_hybrids_in_turn_run_k_per_step_with_weights_that_keep_the_full_forms_average(
        teacher_checkpoint):
    """per_step=1 of 4 hybrids: training steps t = 0..3 run hybrid t+1 alone, weighted 4·w_i,
    so the hybrids' distillation terms summed over the 4 steps equal one step of the full
    form (same batch and weights, BatchNorm in eval mode so that the steps compare); the
    ensemble is the step's hybrid itself. Every connector gets a gradient each step (zero for
    those not run), as DDP needs; the turn is a saved buffer."""
    full = build_blockwise(teacher_checkpoint, hybrids=dict(weights='halving'))
    turns = build_blockwise(teacher_checkpoint, hybrids=dict(weights='halving', per_step=1))
    turns.load_state_dict(dict(full.state_dict(), **{'hybrids.step': torch.tensor(0)}))
    for model in (full, turns):
        model.train()
        model.student.eval()  # deterministic BatchNorm: the steps compare
        for connector in model.hybrids.connectors.values():
            connector.eval()
    data = full.data_preprocessor(make_batch(), training=False)
    full_terms = full.loss(**data)
    summed = {}
    for step in range(4):
        assert int(turns.hybrids.step) == step
        losses = turns.loss(**data)
        assert {key.split('.')[0] for key in losses if key.startswith('hybrid')} == {
            f'hybrid{step + 1}'}
        assert losses[f'hybrid{step + 1}.cross.loss_kd'] == 0  # Y^ens is this hybrid
        total = sum(value for key, value in losses.items() if 'loss' in key)
        connectors = list(turns.hybrids.connectors.parameters())
        grads = torch.autograd.grad(total, connectors, allow_unused=True)
        assert all(grad is not None for grad in grads)
        for key, value in losses.items():
            if key.startswith('hybrid') and '.cross.' not in key:
                summed[key] = value
    assert int(turns.hybrids.step) == 4 and 'hybrids.step' in turns.state_dict()
    assert set(summed) == {key for key in full_terms
                           if key.startswith('hybrid') and '.cross.' not in key}
    for key, value in summed.items():  # 4·w_i·d_i in its turn: w_i·d_i on average over 4 steps
        torch.testing.assert_close(value, 4 * full_terms[key], rtol=1e-5, atol=1e-6)


def test_hybrids_per_step_out_of_range_is_refused(teacher_checkpoint):
    for per_step in (0, 5, 1.5):
        with pytest.raises(ValueError, match=r'model\.hybrids\.per_step: expected a number of '
                           r'hybrids per step in 1\.\.4'):
            build_blockwise(teacher_checkpoint, hybrids=dict(per_step=per_step))


def saved_bytes_and_gradients(model, data) -> tuple:
    """Bytes of the tensors autograd keeps for backward in one loss (outside any activation
    checkpoint, which keeps its own), the loss terms, and the gradient of their sum for each
    trainable parameter."""
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        losses = model.loss(data['inputs'], data['data_samples'])
    trainable = [(name, parameter) for name, parameter in model.named_parameters()
                 if parameter.requires_grad]
    total, _ = model.parse_losses(losses)  # the sum the optimizer wrapper steps on
    grads = torch.autograd.grad(total, [parameter for _, parameter in trainable],
                                allow_unused=True)
    return sum(saved), losses, {name: grad for (name, _), grad in zip(trainable, grads)}


def assert_same_losses_and_gradients(losses: dict, grads: dict, expected_losses: dict,
                                     expected_grads: dict) -> None:
    """Every loss term bit-equal, and every trainable parameter's gradient equal to float32 rounding
    (the same parameters without one), over more than ten parameters."""
    assert losses.keys() == expected_losses.keys()
    for key, value in expected_losses.items():
        torch.testing.assert_close(losses[key], value, rtol=0, atol=0, msg=key)
    assert sum(grad is not None for grad in expected_grads.values()) > 10
    for name, grad in expected_grads.items():
        if grad is None:
            assert grads[name] is None, name
        else:
            torch.testing.assert_close(grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)


def blockwise_model_and_data(model_kind: str, teacher_checkpoint: str, tmp_path,
                             shapes_root: str, image_scale: int = 64, **kwargs) -> tuple:
    """A block-wise distiller in training mode (ResNet, RetinaNet or Faster R-CNN pair, all hybrids;
    ``kwargs`` go to the ResNet and RetinaNet distillers) and a preprocessed batch for it (detection
    images ``image_scale`` pixels a side)."""
    if model_kind == 'resnet':
        model, batch = build_blockwise(teacher_checkpoint, **kwargs), make_batch(size=32)
    else:
        init_default_scope('mmdet')
        config = RETINANET if model_kind == 'retinanet' else FASTER
        checkpoint = save_random_checkpoint(
            config, str(tmp_path / 'det.pth'),
            None if config == RETINANET else dict(model=FASTER_RCNN_SMALL), seed=1)
        model = (BlockwiseDistiller(student=detector_cfg(RETINANET),
                                    teacher=dict(config=RETINANET, checkpoint=checkpoint),
                                    **{'distill_losses': SIGMOID_KD, **kwargs})
                 if config == RETINANET else faster_rcnn_blockwise(checkpoint))
        batch = batch_of(shapes_root, scale=image_scale)
    model.init_weights()
    model.train()
    return model, model.data_preprocessor(batch, training=True)


@pytest.mark.parametrize('model_kind', ['resnet', 'retinanet', 'faster_rcnn'])
def test_recomputed_teacher_tails_keep_losses_and_gradients_and_save_fewer_activations(
        teacher_checkpoint, tmp_path, shapes_root, model_kind):
    """hybrids.recompute_teacher_tails: every loss term and every trainable parameter's gradient as
    without it, while autograd keeps (outside the checkpoints) less than a quarter of what the
    hybrids' teacher parts kept.

    (Each loss starts from the same random
    state: Faster R-CNN samples its RoIs.)
    """
    model, data = blockwise_model_and_data(model_kind, teacher_checkpoint, tmp_path,
                                           shapes_root)
    torch.manual_seed(0)
    student_alone, _, _ = saved_bytes_and_gradients(model.student, data)
    torch.manual_seed(0)
    kept, losses, grads = saved_bytes_and_gradients(model, data)
    model.hybrids.recompute_teacher_tails = True
    torch.manual_seed(0)
    kept_recomputing, losses_recomputing, grads_recomputing = saved_bytes_and_gradients(
        model, data)
    assert_same_losses_and_gradients(losses_recomputing, grads_recomputing, losses, grads)
    assert kept_recomputing - student_alone < 0.25 * (kept - student_alone)


@pytest.mark.parametrize('model_kind', ['resnet', 'retinanet'])
def test_recomputed_teacher_tails_under_bf16_autocast_keep_losses_and_gradients(
        teacher_checkpoint, tmp_path, shapes_root, model_kind):
    """--amp (bf16 autocast on CPU): the recomputation in backward runs under the autocast
    state of the forward, so every loss term and gradient equals the stored-activation one;
    the hybrids' convolutions really ran in bfloat16 (their terms differ from float32's).
    Detection images are 160 px: on 64-px images RetinaNet's P7 conv gets a 1x1 input, and
    torch 2.14's CPU bfloat16 weight gradient of a stride-2 convolution on a 1x1 input comes
    back different (even inf or nan) from one call to the next, with or without
    recomputation (docs/user_guides/mixed_precision.md)."""
    model, data = blockwise_model_and_data(model_kind, teacher_checkpoint, tmp_path,
                                           shapes_root, image_scale=160)
    _, float32_losses, _ = saved_bytes_and_gradients(model, data)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        _, losses, grads = saved_bytes_and_gradients(model, data)
        model.hybrids.recompute_teacher_tails = True
        _, losses_recomputing, grads_recomputing = saved_bytes_and_gradients(model, data)
    hybrid_terms = [key for key in losses if key.startswith('hybrid')]

    def stacked(value):  # RetinaNet's terms are per-level lists
        return torch.stack(list(value)) if isinstance(value, list) else value

    assert hybrid_terms and any(not torch.equal(stacked(losses[key]),
                                                stacked(float32_losses[key]))
                                for key in hybrid_terms)
    assert_same_losses_and_gradients(losses_recomputing, grads_recomputing, losses, grads)


@pytest.mark.parametrize('model_kind', ['resnet', 'retinanet'])
def test_recomputed_logit_terms_keep_losses_and_gradients_and_save_their_intermediates(
        teacher_checkpoint, tmp_path, shapes_root, model_kind):
    """recompute_logit_terms: every loss term and gradient as without it, while autograd keeps
    (outside the checkpoints) less by at least two copies of the logits per distillation and cross
    term (a DIST term keeps its probabilities and their centred and normalised forms, each the
    logits' size, besides its inputs)."""
    activation = 'softmax' if model_kind == 'resnet' else 'sigmoid'
    model, data = blockwise_model_and_data(
        model_kind, teacher_checkpoint, tmp_path, shapes_root,
        distill_losses=dict(loss_dist=dict(type='DISTLoss', activation=activation)))
    kept, losses, grads = saved_bytes_and_gradients(model, data)
    model.recompute_logit_terms = True
    kept_recomputing, losses_recomputing, grads_recomputing = saved_bytes_and_gradients(
        model, data)
    assert_same_losses_and_gradients(losses_recomputing, grads_recomputing, losses, grads)
    with torch.no_grad():
        logits = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    logit_bytes = sum(level.numel() * level.element_size()
                      for level in (logits if isinstance(logits, list) else [logits]))
    terms = [key for key in losses if '.distill.' in key or '.cross.' in key
             or key.startswith(('distill.', 'cross.'))]
    assert len(terms) == 10  # the student's and four hybrids', distill and cross
    assert kept - kept_recomputing >= 2 * len(terms) * logit_bytes


def test_recomputed_logit_terms_under_bf16_autocast_keep_losses_and_gradients(
        teacher_checkpoint, tmp_path, shapes_root):
    """--amp (bf16 autocast on CPU): the terms' recomputation in backward runs under the
    forward's autocast state, so every loss term and gradient equals the stored one."""
    model, data = blockwise_model_and_data(
        'resnet', teacher_checkpoint, tmp_path, shapes_root,
        distill_losses=dict(loss_dist=dict(type='DISTLoss')))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        _, losses, grads = saved_bytes_and_gradients(model, data)
        model.recompute_logit_terms = True
        _, losses_recomputing, grads_recomputing = saved_bytes_and_gradients(model, data)
    assert_same_losses_and_gradients(losses_recomputing, grads_recomputing, losses, grads)


def test_recompute_logit_terms_must_be_a_bool(teacher_checkpoint):
    with pytest.raises(TypeError, match=r'model\.recompute_logit_terms: expected True or '
                       r'False, got 1'):
        build_blockwise(teacher_checkpoint, recompute_logit_terms=1)


def test_recompute_teacher_tails_must_be_a_bool(teacher_checkpoint):
    with pytest.raises(TypeError, match=r'model\.hybrids\.recompute_teacher_tails: expected '
                       r'True or False, got \'yes\''):
        build_blockwise(teacher_checkpoint, hybrids=dict(recompute_teacher_tails='yes'))


def two_stage_blockwise(student: dict, teacher_config: str, teacher_small: dict,
                        checkpoint: str, **kwargs) -> BlockwiseDistiller:
    """A block-wise distiller (KD on RoI logits, tau 1) of ``student`` from a small two-stage
    teacher: ``teacher_config`` with ``teacher_small`` merged into its model."""
    model = BlockwiseDistiller(
        student=student, distill_losses=dict(loss_kd=dict(type='KDLoss', tau=1.0)),
        teacher=dict(config=teacher_config, checkpoint=checkpoint,
                     cfg_options=dict(model=teacher_small)), **kwargs)
    model.init_weights()
    return model


def faster_rcnn_blockwise(checkpoint, **kwargs) -> BlockwiseDistiller:
    """A small Faster R-CNN student (random weights) and teacher (ResNet-18, 64-channel FPN, 3
    classes)."""
    return two_stage_blockwise(detector_cfg(FASTER, **FASTER_RCNN_SMALL), FASTER,
                               FASTER_RCNN_SMALL, checkpoint, **kwargs)


def distilled_from_itself(config: str, small: dict, tmp_path) -> BlockwiseDistiller:
    """A small two-stage detector as student and teacher with the teacher's random weights and
    identity connectors (eval mode): every hybrid is then the teacher."""
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(config, str(tmp_path / 'detector.pth'),
                                        dict(model=small), seed=3)
    student = detector_cfg(config, **small,
                           init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    return two_stage_blockwise(student, config, small, checkpoint, hybrids=IDENTITY).eval()


def run_student_and_hybrids(model: BlockwiseDistiller, data: dict) -> tuple:
    """The student's losses and outputs, what its step recorded, every hybrid's output and the
    teacher's logits, for one preprocessed batch."""
    with model.adapter.record_student_step(model.student) as records:
        student_losses, outputs = model.run_student(data['inputs'], data['data_samples'])
    states = {stage: model.student_recorder.outputs[name]
              for stage, name in model.hybrids.student_modules.items()}
    hybrids = model.hybrids(states, model.teacher, data['inputs'], data['data_samples'],
                            records=records)
    teacher_logits = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    return student_losses, outputs, records, hybrids, teacher_logits


def test_faster_rcnn_hybrids_score_the_students_rois_with_the_teachers_box_head(
        tmp_path, shapes_root):
    """Student = teacher weights and identity connectors: every hybrid is the teacher, so on
    the student's sampled RoIs its class logits are the teacher's, and its box-head loss with
    the student's targets for those RoIs is the student's own RoI loss (no second RPN, no
    second sampling: the same proposals, the same targets)."""
    model = distilled_from_itself(FASTER, FASTER_RCNN_SMALL, tmp_path)
    data = model.data_preprocessor(batch_of(shapes_root), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {f'hybrid{stage}.loss_cls' for stage in range(1, 5)} <= set(losses)
    student_losses, outputs, records, hybrids, teacher_logits = run_student_and_hybrids(
        model, data)
    assert records['rois'].shape[1] == 5 and len(records['sampling_results']) == 4
    torch.testing.assert_close(outputs['logits'], teacher_logits, rtol=1e-4, atol=1e-5)
    assert [hybrid.stage for hybrid in hybrids] == [1, 2, 3, 4]
    for hybrid in hybrids:
        torch.testing.assert_close(hybrid.logits, teacher_logits, rtol=1e-4, atol=1e-5)
        for key in ('loss_cls', 'loss_bbox'):
            torch.testing.assert_close(hybrid.task_losses[key], student_losses[key],
                                       rtol=1e-4, atol=1e-6)


def assert_hybrid_2_trains_stage_2_and_its_connector(model: BlockwiseDistiller,
                                                     losses: dict) -> None:
    """Hybrid N_2's terms alone send gradients into the ResNet student's stage 2 and connector C_2
    (mmdet's ResNet zero-initialises each block's last BN, so the block convolutions get no gradient
    yet; the shortcut's does)."""
    hybrid_terms = sum(value for key, value in losses.items()
                       if key.startswith('hybrid2.') and 'loss' in key)
    stage_2 = model.student.backbone.layer2[0].downsample[0].weight
    connector = model.hybrids.connectors['stage2'].conv.weight
    grads = torch.autograd.grad(hybrid_terms, [stage_2, connector])
    assert all(grad.abs().sum() > 0 for grad in grads)


def test_faster_rcnn_hybrids_train_the_connectors_and_the_students_stages(
        tmp_path, shapes_root):
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(FASTER, str(tmp_path / 'frcnn.pth'),
                                        dict(model=FASTER_RCNN_SMALL))
    model = faster_rcnn_blockwise(checkpoint, hybrids=dict(per_step=1))
    model.train()
    model.hybrids.step.fill_(1)  # the turn of hybrid N_2 (the stock config freezes stage 1)
    data = model.data_preprocessor(batch_of(shapes_root), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {key.split('.')[0] for key in losses if key.startswith('hybrid')} == {'hybrid2'}
    assert_hybrid_2_trains_stage_2_and_its_connector(model, losses)


MASK_RCNN = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
MASK_RCNN_SMALL = dict(FASTER_RCNN_SMALL, roi_head=dict(
    FASTER_RCNN_SMALL['roi_head'], mask_roi_extractor=dict(out_channels=64),
    mask_head=dict(in_channels=64, conv_out_channels=64, num_classes=3)))


def test_mask_rcnn_hybrids_run_the_box_branch_only(tmp_path, shapes_root):
    """A Mask R-CNN pair (student = teacher weights, identity connectors): the hybrids score
    the student's sampled RoIs with the teacher's box head, so their logits are the teacher's
    and their task losses the student's box losses; the teacher's mask branch never runs."""
    model = distilled_from_itself(MASK_RCNN, MASK_RCNN_SMALL, tmp_path)
    mask_calls = []
    model.teacher.roi_head.mask_head.register_forward_hook(
        lambda *_: mask_calls.append(1))
    data = model.data_preprocessor(batch_of(shapes_root, with_mask=True), training=True)
    student_losses, _, _, hybrids, teacher_logits = run_student_and_hybrids(model, data)
    assert student_losses['loss_mask'] > 0  # the student trains its mask branch
    assert not mask_calls
    for hybrid in hybrids:
        torch.testing.assert_close(hybrid.logits, teacher_logits, rtol=1e-4, atol=1e-5)
        assert set(hybrid.task_losses) == {'loss_cls', 'acc', 'loss_bbox'}
        for key in ('loss_cls', 'loss_bbox'):
            torch.testing.assert_close(hybrid.task_losses[key], student_losses[key],
                                       rtol=1e-4, atol=1e-6)


def test_cascade_rcnn_hybrids_score_the_students_last_stage_rois_with_the_teachers_last_stage(
        tmp_path, shapes_root):
    """Student = teacher weights and identity connectors: a hybrid runs the teacher's last RoI
    stage (the compared one, as the logit term) on the student's last-stage sampled RoIs, so
    its class logits are the teacher's and its box-head loss with the student's targets is the
    student's own last-stage loss, weighted as the student weighs that stage."""
    model = distilled_from_itself(CASCADE, CASCADE_SMALL, tmp_path)
    data = model.data_preprocessor(batch_of(shapes_root), training=True)
    called = {stage: 0 for stage in range(3)}
    for stage, head in enumerate(model.teacher.roi_head.bbox_head):
        head.register_forward_hook(lambda *_, stage=stage: called.__setitem__(
            stage, called[stage] + 1))
    student_losses, outputs, _, hybrids, teacher_logits = run_student_and_hybrids(model, data)
    # the last stage only: once per hybrid, once for the teacher's logits
    assert called == {0: 0, 1: 0, 2: 5}
    torch.testing.assert_close(outputs['logits'], teacher_logits, rtol=1e-4, atol=1e-5)
    assert [hybrid.stage for hybrid in hybrids] == [1, 2, 3, 4]
    for hybrid in hybrids:
        torch.testing.assert_close(hybrid.logits, teacher_logits, rtol=1e-4, atol=1e-5)
        for key in ('loss_cls', 'loss_bbox'):  # (the student's s2 terms weigh 0.25)
            torch.testing.assert_close(hybrid.task_losses[key], student_losses[f's2.{key}'],
                                       rtol=1e-4, atol=1e-6)


def test_a_faster_rcnn_student_trains_through_a_cascade_teachers_first_stage(
        tmp_path, shapes_root):
    """A one-stage RoI student's RoIs are proposals at the first stage's IoU: its hybrids run the
    cascade teacher's first stage on them (as its logit term compares), and the hybrid's term trains
    the connector and the student's stage."""
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(CASCADE, str(tmp_path / 'cascade.pth'),
                                        dict(model=CASCADE_SMALL))
    model = two_stage_blockwise(detector_cfg(FASTER, **FASTER_RCNN_SMALL), CASCADE,
                                CASCADE_SMALL, checkpoint, hybrids=dict(per_step=1))
    model.train()
    model.hybrids.step.fill_(1)  # the turn of hybrid N_2
    seen_rois = []
    model.teacher.roi_head.bbox_roi_extractor[0].register_forward_hook(
        lambda module, args, output: seen_rois.append(args[1]))
    data = model.data_preprocessor(batch_of(shapes_root), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    student_rois = model.student_recorder.inputs['roi_head.bbox_roi_extractor'][1]
    assert len(seen_rois) == 2 and all(torch.equal(rois, student_rois) for rois in seen_rois)
    assert_hybrid_2_trains_stage_2_and_its_connector(model, losses)


def test_the_students_step_is_recorded_whatever_else_its_bbox_loss_takes(tmp_path):
    """Grid R-CNN's ``bbox_loss`` also takes the image metas, PISA's sample weights: the recording
    wraps the stock method with its own arguments, passed on unchanged."""
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(FASTER, str(tmp_path / 'frcnn.pth'),
                                        dict(model=FASTER_RCNN_SMALL))
    model = faster_rcnn_blockwise(checkpoint)
    received = []

    def stand_in(features, sampling_results, metas, neg_label_weights=None):
        received.append((metas, neg_label_weights))
        return {}

    model.student.roi_head.bbox_loss = stand_in  # extra arguments, as those heads have
    from mmengine.structures import InstanceData
    sampling = [InstanceData(priors=torch.tensor([[0., 0., 4., 4.]]))]
    with model.adapter.record_student_step(model.student) as records:
        model.student.roi_head.bbox_loss('x', sampling, ['meta'], neg_label_weights='w')
    assert received == [(['meta'], 'w')]
    assert records['sampling_results'] is sampling
    assert records['rois'].tolist() == [[0., 0., 0., 4., 4.]]
    assert model.student.roi_head.bbox_loss is stand_in  # restored after the step


def hybrid_task_loss_keys(losses: dict) -> list:
    """The hybrids' task-loss terms (``hybrid<i>.<head loss>``), not their distill/cross."""
    return [key for key in losses if key.startswith('hybrid')
            and not key.split('.', 1)[1].startswith(('distill.', 'cross.'))]


@pytest.mark.parametrize('model_kind', ['resnet', 'retinanet', 'faster_rcnn'])
def test_hybrids_without_task_losses_keep_every_other_term_and_its_gradients(
        teacher_checkpoint, tmp_path, shapes_root, model_kind):
    """hybrids.task_losses=False: the hybrids' head losses are gone, every other term is bit-equal
    to the full form's, and each trainable parameter's gradient is the full form's gradient of those
    other terms alone.

    RetinaNet's hybrids then run only the teacher head's
    class branch (its box branch is never called) and autograd keeps less. (Each loss starts
    from the same random state: Faster R-CNN samples its RoIs.)
    """
    model, data = blockwise_model_and_data(model_kind, teacher_checkpoint, tmp_path,
                                           shapes_root)
    box_branch_calls = []
    if model_kind == 'retinanet':
        for module in (*model.teacher.bbox_head.reg_convs, model.teacher.bbox_head.retina_reg):
            module.register_forward_hook(lambda *_: box_branch_calls.append(1))
    torch.manual_seed(0)
    kept, full_losses, _ = saved_bytes_and_gradients(model, data)
    full_form_box_calls = len(box_branch_calls)
    task_keys = hybrid_task_loss_keys(full_losses)
    assert task_keys
    torch.manual_seed(0)
    rest = {key: value for key, value in model.loss(data['inputs'], data['data_samples']).items()
            if key not in task_keys}
    trainable = [(name, parameter) for name, parameter in model.named_parameters()
                 if parameter.requires_grad]
    rest_grads = torch.autograd.grad(model.parse_losses(rest)[0],
                                     [parameter for _, parameter in trainable],
                                     allow_unused=True)
    expected_grads = {name: grad for (name, _), grad in zip(trainable, rest_grads)}

    model.hybrids.task_losses = False
    box_calls_before = len(box_branch_calls)
    torch.manual_seed(0)
    kept_light, losses, grads = saved_bytes_and_gradients(model, data)
    assert_same_losses_and_gradients(losses, grads, rest, expected_grads)
    if model_kind == 'retinanet':
        assert full_form_box_calls > 0 and len(box_branch_calls) == box_calls_before
        assert kept_light < kept


def test_hybrid_task_losses_must_be_a_bool(teacher_checkpoint):
    with pytest.raises(TypeError, match=r'model\.hybrids\.task_losses: expected True or '
                       r'False, got 0'):
        build_blockwise(teacher_checkpoint, hybrids=dict(task_losses=0))


def test_levels_of_a_loss_are_refused_naming_the_field(teacher_checkpoint):
    with pytest.raises(ValueError, match=r'model\.distill_losses\.loss_kd\.levels: block-wise '
                                         'distillation compares every level'):
        build_blockwise(teacher_checkpoint,
                        distill_losses=dict(loss_kd=dict(type='KDLoss', levels=[-1])))
