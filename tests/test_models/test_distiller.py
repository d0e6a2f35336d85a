"""The Distiller with real mmpretrain models on tiny inputs."""

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.optim import OptimWrapper

from mmkd_plugins.models import Distiller
from mmkd_plugins.models.distillers.distill_losses import distill_terms, weighted_task_losses
from mmkd_plugins.models.losses import dkd_loss
from ..conftest import TEACHER_CONFIG, save_random_checkpoint
from ..support.classifiers import (KD, assert_bf16_close, backbone_call_order, build_distiller,
                                   identical_inputs_dist_residual, make_batch, student_model_cfg)


def test_teacher_is_frozen_and_stays_in_eval_mode(teacher_checkpoint):
    model = build_distiller(teacher_checkpoint)
    model.train()
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert all(not m.training for m in model.teacher.modules())
    assert all(m.training for m in model.student.modules())
    assert all(p.requires_grad for p in model.student.parameters())


def test_init_weights_keeps_the_loaded_teacher(teacher_checkpoint):
    model = build_distiller(teacher_checkpoint)
    loaded = torch.load(teacher_checkpoint)['state_dict']
    model.init_weights()
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, loaded[key]), key


def test_state_dict_has_no_teacher_and_reloads_strictly(teacher_checkpoint):
    model = build_distiller(teacher_checkpoint)
    state = model.state_dict()
    assert state and all(key.startswith('student.') for key in state)
    fresh = build_distiller(teacher_checkpoint)
    fresh.load_state_dict(state, strict=True)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key])


def test_loss_keys_and_gradients_reach_only_the_student(teacher_checkpoint):
    model = build_distiller(teacher_checkpoint,
                            losses=dict(KD, loss_dist=dict(type='DISTLoss', tau=4.0)))
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    stem_before = model.student.backbone.conv1.weight.detach().clone()
    log_vars = {k: float(v) for k, v in model.train_step(make_batch(), optim_wrapper).items()}
    assert {'student.loss', 'distill.loss_kd', 'distill.loss_dist', 'loss'} <= set(log_vars)
    assert log_vars['distill.loss_kd'] > 0 and log_vars['distill.loss_dist'] > 0
    total = log_vars['student.loss'] + log_vars['distill.loss_kd'] + log_vars['distill.loss_dist']
    assert log_vars['loss'] == pytest.approx(total, rel=1e-5)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    assert all(p.grad is None for p in model.teacher.parameters())
    assert not torch.equal(model.student.backbone.conv1.weight, stem_before)


def test_a_classifier_teacher_runs_before_the_students_forward(teacher_checkpoint):
    """Its logits depend on the batch alone, so it runs first: its forward then does not run beside
    the student's activations kept for backward (slower on CPU, docs/benchmark.md)."""
    model = build_distiller(teacher_checkpoint)
    data = model.data_preprocessor(make_batch(), training=True)
    assert backbone_call_order(model, data) == ['teacher', 'student']


def test_running_the_teacher_first_leaves_the_losses_as_the_student_first_order_gives_them(
        teacher_checkpoint):
    """The eval-mode teacher draws no random numbers and reads nothing of the student's step,
    so the order changes no value: the losses equal, bit for bit, those of the student's
    forward followed by the teacher's."""
    model = build_distiller(teacher_checkpoint,
                            losses=dict(KD, loss_dist=dict(type='DISTLoss', tau=4.0)))
    data = model.data_preprocessor(make_batch(), training=True)
    losses = model(**data, mode='loss')
    student_losses, student_outputs = model.run_student(data['inputs'], data['data_samples'])
    teacher_outputs = model.run_teacher(data['inputs'], data['data_samples'])
    expected = weighted_task_losses(student_losses, 'student.', model.student_loss_weight)
    expected.update(distill_terms(model.distill_losses, model.compared_outputs, student_outputs,
                                  teacher_outputs, data['data_samples'], prefix='distill.'))
    assert set(expected) <= set(losses)
    for key, value in expected.items():
        assert torch.equal(losses[key], value), key


def test_same_network_same_weights_gives_zero_distillation_loss(tmp_path):
    checkpoint = save_random_checkpoint(TEACHER_CONFIG, str(tmp_path / 'same.pth'), seed=3)
    student = dict(student_model_cfg(TEACHER_CONFIG),
                   init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    model = build_distiller(checkpoint, student=student,
                            losses=dict(KD, loss_dist=dict(type='DISTLoss')))
    model.init_weights()
    model.eval()  # same BatchNorm statistics on both sides
    data = model.data_preprocessor(make_batch(), training=False)
    losses = model(**data, mode='loss')
    student_logits = model.student_recorder.outputs['head']
    teacher_logits = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    torch.testing.assert_close(student_logits, teacher_logits)
    assert losses['distill.loss_kd'].item() == pytest.approx(0.0, abs=1e-5)
    # Identical inputs leave DIST's eps residual (the authors' `‖ã‖·‖b̃‖ + eps`):
    # 1 - pearson(y, y) = eps / (‖ỹ‖² + eps), per row and per class.
    assert losses['distill.loss_dist'].item() == pytest.approx(
        identical_inputs_dist_residual(teacher_logits), rel=1e-3, abs=1e-7)


def test_named_module_outputs_can_be_distilled(teacher_checkpoint):
    by_name = dict(loss_kd=dict(type='KDLoss', tau=4.0, student_output='head.fc',
                                teacher_output='head.fc'))
    model = build_distiller(teacher_checkpoint, losses=by_name)
    default = build_distiller(teacher_checkpoint)
    default.load_state_dict(model.state_dict())
    data = model.data_preprocessor(make_batch(), training=True)
    torch.manual_seed(0)
    named_loss = model(**data, mode='loss')['distill.loss_kd']
    torch.manual_seed(0)
    default_loss = default(**data, mode='loss')['distill.loss_kd']
    assert named_loss.item() == pytest.approx(default_loss.item(), rel=1e-6)


def test_teacher_input_is_renormalized_when_its_mean_and_std_differ(teacher_checkpoint):
    teacher_norm = dict(mean=[100.0, 110.0, 120.0], std=[50.0, 60.0, 70.0], to_rgb=True)
    model = build_distiller(teacher_checkpoint,
                            cfg_options=dict(data_preprocessor=teacher_norm))
    assert not model.teacher_source.renormalizer.is_identity
    batch = make_batch()
    student_inputs = model.data_preprocessor(batch, training=False)['inputs']
    teacher_inputs = model.teacher.data_preprocessor(batch, training=False)['inputs']
    torch.testing.assert_close(model.teacher_source.renormalizer(student_inputs), teacher_inputs,
                               rtol=1e-5, atol=1e-4)


def test_same_normalization_is_passed_through_unchanged(teacher_checkpoint):
    model = build_distiller(teacher_checkpoint)
    assert model.teacher_source.renormalizer.is_identity
    inputs = torch.randn(2, 3, 16, 16)
    assert model.teacher_source.renormalizer(inputs) is inputs


@pytest.mark.parametrize('config,options', [
    ('mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py', dict(head=dict(num_classes=10))),
    ('mmpretrain::shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py',
     dict(head=dict(num_classes=10))),
    ('mmpretrain::deit/deit-tiny_4xb256_in1k.py',
     dict(backbone=dict(img_size=16, patch_size=4), head=dict(num_classes=10))),
])
def test_other_classifier_families_train_one_step(teacher_checkpoint, config, options):
    cfg = get_config(config)
    cfg.merge_from_dict(dict(model=options))
    student = dict(cfg.model, data_preprocessor=student_model_cfg()['data_preprocessor'])
    student.pop('train_cfg', None)  # no Mixup/CutMix batch augments for this check
    model = build_distiller(teacher_checkpoint, student=student)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    distill_loss = float(model.train_step(make_batch(), optim_wrapper)['distill.loss_kd'])
    assert 0 < distill_loss < float('inf')


def test_dkd_gets_the_batch_labels(teacher_checkpoint):
    model = build_distiller(teacher_checkpoint, losses=dict(
        loss_dkd=dict(type='DKDLoss', alpha=1.0, beta=8.0, tau=4.0)))
    model.eval()
    data = model.data_preprocessor(make_batch(), training=False)
    logged = model(**data, mode='loss')['distill.loss_dkd']
    labels = torch.tensor([i % 10 for i in range(4)])
    expected = dkd_loss(model.student(data['inputs'], mode='tensor'),
                        model.teacher(data['inputs'], mode='tensor'), labels, 1.0, 8.0, 4.0)
    torch.testing.assert_close(logged, expected)


def test_channels_last_teacher_gives_the_same_logits(teacher_checkpoint):
    standard = build_distiller(teacher_checkpoint)
    fast = build_distiller(teacher_checkpoint, channels_last=True)
    conv = fast.teacher.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    data = standard.data_preprocessor(make_batch(), training=False)
    expected = standard.run_teacher(data['inputs'], data['data_samples'])['logits']
    got = fast.run_teacher(data['inputs'], data['data_samples'])['logits']
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_bf16_teacher_gives_float32_logits_near_the_float32_ones(teacher_checkpoint):
    standard = build_distiller(teacher_checkpoint)
    fast = build_distiller(teacher_checkpoint, bf16=True)
    data = standard.data_preprocessor(make_batch(), training=False)
    expected = standard.run_teacher(data['inputs'], data['data_samples'])['logits']
    assert_bf16_close(fast.run_teacher(data['inputs'], data['data_samples'])['logits'],
                      expected)
    teacher_conv = []
    fast.teacher.backbone.conv1.register_forward_hook(
        lambda module, args, output: teacher_conv.append(output.dtype))
    optim_wrapper = OptimWrapper(torch.optim.SGD(fast.parameters(), lr=0.1))
    log_vars = fast.train_step(make_batch(), optim_wrapper)
    assert teacher_conv == [torch.bfloat16]  # the training step's teacher ran in bf16
    assert 0 < float(log_vars['distill.loss_kd']) < float('inf')


@pytest.mark.parametrize('backbone,channels', [
    (dict(type='SwinTransformer', arch='tiny', img_size=64,
          stage_cfgs=dict(block_cfgs=dict(window_size=2))), 768),
    (dict(type='TinyViT', arch='5m', img_size=(64, 64), window_size=[2, 2, 2, 2],
          out_indices=(3, ), gap_before_final_norm=True), 320),  # pooled, as its stock configs
], ids=['Swin (patch embedding size)', 'TinyViT (backbone img_size)'])
def test_a_teacher_built_for_another_input_size_gets_the_batch_at_its_size(tmp_path, backbone,
                                                                           channels):
    """A Swin or TinyViT teacher built for 64×64 (window attention that fails on other maps) distils
    a 16×16 student: the batch is resized to the teacher's size, never run at the wrong one."""
    student = student_model_cfg()
    teacher = dict(type='ImageClassifier', backbone=backbone,
                   head=dict(type='LinearClsHead', num_classes=10, in_channels=channels))
    if backbone['type'] == 'SwinTransformer':
        teacher['neck'] = dict(type='GlobalAveragePooling')
    teacher_config = dict(model=teacher, data_preprocessor=student['data_preprocessor'])
    checkpoint = str(tmp_path / 'teacher64.pth')
    from mmkd_plugins.models.teachers import build_model_from_config
    torch.save({'state_dict': build_model_from_config(Config(teacher_config)).state_dict()},
               checkpoint)
    model = Distiller(student=student, teacher=dict(config=teacher_config, checkpoint=checkpoint),
                      distill_losses=KD)
    seen = []
    model.teacher.backbone.patch_embed.register_forward_hook(
        lambda module, args, output: seen.append(tuple(args[0].shape[-2:])))
    data = model.data_preprocessor(make_batch(size=16), training=True)
    logits = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    assert seen == [(64, 64)]
    resized = torch.nn.functional.interpolate(data['inputs'], size=(64, 64), mode='bilinear',
                                              align_corners=False)
    torch.testing.assert_close(logits, model.teacher(resized, mode='tensor'))
    log_vars = model.train_step(make_batch(size=16),
                                OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
    assert 0 < float(log_vars['distill.loss_kd']) < float('inf')


def test_layer_wise_lr_decay_gives_student_parameters_the_stock_scales(tmp_path):
    """The BEiT/MAE/CAE fine-tuning configs' LearningRateDecayOptimWrapperConstructor asks the model
    for get_layer_depth(): the distilled ViT's parameters get the learning rates they get without
    distillation; the distiller's own (a CTKD temperature) the head's, scale 1."""
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor

    from mmkd_plugins.models.teachers import build_model_from_config
    vit = dict(type='ImageClassifier',
               backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=32,
                             patch_size=16),
               neck=None, head=dict(type='VisionTransformerClsHead', num_classes=10,
                                    in_channels=192))
    config = dict(model=vit, data_preprocessor=student_model_cfg()['data_preprocessor'])
    checkpoint = str(tmp_path / 'vit.pth')
    torch.save({'state_dict': build_model_from_config(Config(config)).state_dict()}, checkpoint)
    model = Distiller(student=dict(vit, data_preprocessor=config['data_preprocessor']),
                      teacher=dict(config=config, checkpoint=checkpoint),
                      distill_losses=dict(loss_kd=dict(
                          type='KDLoss', tau=dict(type='CurriculumTemperature'))))
    constructor = LearningRateDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
        paramwise_cfg=dict(layer_decay_rate=0.5))
    groups = constructor(model).optimizer.param_groups
    stock = {group['param_name']: group['lr'] for group in
             constructor(build_model_from_config(Config(config))).optimizer.param_groups}
    lrs = {group['param_name']: group['lr'] for group in groups}
    own = [name for name in lrs if not name.startswith('student.')]
    assert own and all(lrs[name] == 1e-3 for name in own), own
    assert {name[len('student.'):]: lr for name, lr in lrs.items()
            if name.startswith('student.')} == stock
    assert stock['backbone.cls_token'] == 1e-3 * 0.5 ** 13  # depth 0 of 14 (12 layers + 2)


def _levit_like_logits(head, features):
    pre_logits = head.pre_logits(features)
    distillation = head.head_dist if hasattr(head, 'head_dist') else head.dist_head
    return head.head(pre_logits), distillation(pre_logits)


def _deit_logits(head, features):
    class_token, distillation_token = head.pre_logits(features)
    return head.layers.head(class_token), head.layers.head_dist(distillation_token)


@pytest.mark.parametrize('config,classifiers,distillation_layer', [
    ('mmpretrain::levit/levit-128s_8xb256_in1k.py', _levit_like_logits, 'head_dist'),
    ('mmpretrain::efficientformer/efficientformer-l1_8xb128_in1k.py', _levit_like_logits,
     'dist_head'),
    ('mmpretrain::deit/deit-tiny-distilled_4xb256_in1k.py', _deit_logits, 'layers.head_dist'),
])
def test_a_head_with_a_distillation_classifier_trains_as_in_its_paper(
        config, classifiers, distillation_layer, teacher_checkpoint):
    """DeiT/LeViT/EfficientFormer heads: mmpretrain cannot train them (LeViT's and EfficientFormer's
    forward raise, DeiT's trains the mean on the labels).

    As in DeiT: the class
    classifier learns the labels, the distillation classifier the teacher's argmax
    (½ CE + ½ hard distillation); the prediction stays the stock mean of both.
    """
    stock = get_config(config)
    student = dict(stock.model, data_preprocessor=dict(stock.data_preprocessor, num_classes=10))
    student['head'] = dict(student['head'], num_classes=10)
    student.pop('train_cfg', None)  # no Mixup/CutMix: the labels stay one class per image
    model = Distiller(student=student,
                      teacher=dict(config=TEACHER_CONFIG, checkpoint=teacher_checkpoint),
                      distill_losses=dict(loss_hard=dict(type='HardDistillationLoss',
                                                         loss_weight=0.5)),
                      student_loss_weight=0.5)
    data = model.data_preprocessor(make_batch(batch_size=2, size=224), training=True)
    inputs, samples = data['inputs'], data['data_samples']
    model.eval()  # the same logits in every call below (drop path, batch norm)
    losses = model.loss(inputs, samples)
    head = model.student.head
    class_logits, distillation_logits = classifiers(head, model.student.extract_feat(inputs))
    labels = torch.cat([sample.gt_label for sample in samples])
    teacher_top = model.run_teacher(inputs, samples)['logits'].argmax(dim=1)
    # the head's own loss: the stock LeViT and DeiT configs smooth labels by 0.1 ('original':
    # (1 - 0.1) one-hot + 0.1 / C), EfficientFormer's is the plain cross-entropy
    smoothing = (stock.model.head.get('loss') or {}).get('label_smooth_val', 0.0)
    target = (1 - smoothing) * torch.nn.functional.one_hot(labels, 10) + smoothing / 10
    task = -(target * class_logits.log_softmax(dim=1)).sum(dim=1).mean()
    torch.testing.assert_close(losses['student.loss'], 0.5 * task)
    torch.testing.assert_close(losses['distill.loss_hard'], 0.5 * torch.nn.functional.cross_entropy(
        distillation_logits, teacher_top))
    torch.testing.assert_close(model(inputs, mode='tensor'),
                               (class_logits + distillation_logits) / 2)  # stock prediction

    model.train()
    losses = model.loss(inputs, samples)
    class_weight = head.get_submodule('layers.head' if 'layers' in distillation_layer
                                      else 'head')
    distillation_weight = head.get_submodule(distillation_layer)

    def weight_gradient(loss, layer):
        weights = [p for name, p in layer.named_parameters() if name.endswith('weight')]
        return torch.autograd.grad(loss, weights[-1], retain_graph=True, allow_unused=True)[0]

    assert weight_gradient(losses['student.loss'], distillation_weight) is None
    assert weight_gradient(losses['distill.loss_hard'], class_weight) is None
    assert weight_gradient(losses['student.loss'], class_weight).abs().sum() > 0
    assert weight_gradient(losses['distill.loss_hard'], distillation_weight).abs().sum() > 0
