"""Block-wise hybrids across stage layouts: a student stage of one layout (a CNN's map, a
transformer's tokens) feeds a teacher stage of another, through the connector and a change of layout
(:mod:`mmkd_plugins.models.blockwise.state_layouts`)."""

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from mmkd_plugins.checkpoint import extract_student_state_dict
from mmkd_plugins.models import BlockwiseDistiller
from mmkd_plugins.models.blockwise.state_layouts import (LayoutChange, StateLayout,
                                                         teacher_position_embedding)
from mmkd_plugins.models.teachers import build_model_from_config, load_model_config
from ..conftest import save_random_checkpoint
from ..support.backbone_layouts import LAYOUTS, model_cfg
from ..support.classifiers import KD, make_batch
from ..support.detectors import RETINANET, batch_of, detector_cfg

SWIN_CONFIG, SWIN_OPTIONS = LAYOUTS['hierarchical-swin']
MAP_SWIN_OPTIONS = dict(SWIN_OPTIONS, **{
    'model.backbone': dict(SWIN_OPTIONS['model.backbone'], type='SwinWithMapStates')})


def state_dict_with_prefix(checkpoint: str, old: str, new: str, path: str) -> str:
    """Save ``checkpoint``'s weights with the key prefix ``old`` renamed ``new``."""
    state_dict = torch.load(checkpoint, weights_only=True)['state_dict']
    torch.save({'state_dict': {(new + key[len(old):] if key.startswith(old) else key): value
                               for key, value in state_dict.items()}, 'meta': {}}, path)
    return path


@pytest.mark.parametrize('student_layout', ['maps', 'tokens'])
def test_a_change_of_layout_that_is_exact_gives_the_teachers_logits(student_layout, tmp_path):
    """One Swin as student and teacher, one of them laying its stage states out as (B, C, H, W)
    maps: with identity connectors, map -> tokens (or tokens -> map) is exact, so every hybrid
    gives the teacher's logits."""
    swin = save_random_checkpoint(SWIN_CONFIG, str(tmp_path / 'swin.pth'), SWIN_OPTIONS, seed=4)
    map_swin = state_dict_with_prefix(swin, 'backbone.', 'backbone.swin.',
                                      str(tmp_path / 'map_swin.pth'))
    if student_layout == 'maps':
        student_options, student_checkpoint = MAP_SWIN_OPTIONS, map_swin
        teacher_options, teacher_checkpoint = SWIN_OPTIONS, swin
    else:
        student_options, student_checkpoint = SWIN_OPTIONS, swin
        teacher_options, teacher_checkpoint = MAP_SWIN_OPTIONS, map_swin
    student = load_model_config(SWIN_CONFIG, 'test', student_options).model
    model = BlockwiseDistiller(
        student=dict(student, data_preprocessor=model_cfg('hierarchical-swin')[
            'data_preprocessor'], init_cfg=dict(type='Pretrained', checkpoint=student_checkpoint)),
        teacher=dict(config=SWIN_CONFIG, checkpoint=teacher_checkpoint,
                     cfg_options=teacher_options),
        distill_losses=KD, hybrids=dict(connector=dict(type='IdentityConnector'), probe_size=32))
    model.init_weights()
    model.eval()
    assert sorted(model.hybrids.layout_changes) == ['stage1', 'stage2', 'stage3', 'stage4']
    data = model.data_preprocessor(make_batch(size=32), training=False)
    model.run_student(data['inputs'], data['data_samples'])
    states = {stage: model.student_recorder.outputs[name]
              for stage, name in model.hybrids.student_modules.items()}
    teacher_logits = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    assert teacher_logits.std() > 1e-3
    for hybrid in model.hybrids(states, model.teacher, data['inputs'], data['data_samples']):
        torch.testing.assert_close(hybrid.logits, teacher_logits, rtol=1e-4, atol=1e-5)


def layout_pair(student: str, teacher: str, tmp_path) -> BlockwiseDistiller:
    """A block-wise distiller of two :data:`LAYOUTS` entries, the teacher's weights random (seed 4)
    and saved."""
    teacher_config, teacher_options = LAYOUTS[teacher]
    checkpoint = save_random_checkpoint(teacher_config, str(tmp_path / 'teacher.pth'),
                                        teacher_options, seed=4)
    return BlockwiseDistiller(
        student=model_cfg(student), distill_losses=KD,
        teacher=dict(config=teacher_config, checkpoint=checkpoint, cfg_options=teacher_options))


@pytest.mark.parametrize('student, teacher, first_stage, changes', [
    ('maps-convnext', 'tokens-deit', 'stages.0', 4),  # map -> tokens with a class token
    ('hierarchical-swin', 'tokens-deit', 'stages.0.blocks', 4),  # token grids of other sizes
    ('tokens-deit', 'maps-convnext', 'layers.0', 4),  # tokens with a class token -> map
    ('tokens-deit', 'two-tokens-deit-distilled', 'layers.0', 4),  # 1 extra token -> 2
])
def test_a_student_of_another_layout_trains_through_learned_connectors(
        student, teacher, first_stage, changes, tmp_path):
    model = layout_pair(student, teacher, tmp_path)
    model.init_weights()
    assert len(model.hybrids.layout_changes) == changes
    teacher_before = {key: value.clone() for key, value in model.teacher.state_dict().items()}

    # one hybrid's term alone reaches the student's first stage (and the learned extra tokens)
    data = model.data_preprocessor(make_batch(size=32), training=True)
    hybrid_term = model.loss(**data)['hybrid1.distill.loss_kd']
    first = list(model.student.backbone.get_submodule(first_stage).parameters())
    extra = [change.extra_tokens for change in model.hybrids.layout_changes.values()
             if change.extra_tokens is not None][:1]
    gradients = torch.autograd.grad(hybrid_term, first + extra, allow_unused=True)
    assert all(grad is not None and grad.abs().sum() > 0 for grad in gradients)

    # training steps at the probe's size and at another: the teacher stays bit-identical, the
    # export loads into the student's stock config
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    for size in (32, 48):
        log_vars = model.train_step(make_batch(size=size), optim_wrapper)
        assert {f'hybrid{stage}.distill.loss_kd' for stage in range(1, 5)} <= set(log_vars)
        assert all(torch.isfinite(value) for value in log_vars.values())
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    config, options = LAYOUTS[student]
    stock = build_model_from_config(load_model_config(config, 'test', options))
    stock.load_state_dict(extract_student_state_dict(model.state_dict()), strict=True)


def test_a_vit_teacher_built_for_larger_inputs_runs_at_the_students_size(tmp_path):
    """A ViT teacher built for 64-px inputs (an 8 × 8 grid; as a 384-px teacher of a 224-px student)
    and a ConvNeXt student trained on 32-px images: the probe runs at the teacher's 64 px, the
    hybrids at the batch's 32 px, on the teacher's 4 × 4 grid for it, with its position embedding
    resized to that grid."""
    config, options = LAYOUTS['tokens-deit']
    options = dict(options, **{'model.backbone': dict(options['model.backbone'], img_size=64)})
    checkpoint = save_random_checkpoint(config, str(tmp_path / 'vit64.pth'), options, seed=4)
    model = BlockwiseDistiller(
        student=model_cfg('maps-convnext'), distill_losses=KD,
        teacher=dict(config=config, checkpoint=checkpoint, cfg_options=options))
    assert model.teacher.backbone.patch_resolution == (8, 8)
    data = model.data_preprocessor(make_batch(size=32), training=True)
    model.run_student(data['inputs'], data['data_samples'])
    state = model.student_recorder.outputs['backbone.stages.0']
    tokens = model.hybrids.connect(1, state, (32, 32))
    assert tokens.shape == (4, 1 + 4 * 4, 32)
    log_vars = model.train_step(make_batch(size=32),
                                OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
    assert all(torch.isfinite(value) for value in log_vars.values())


def test_tokens_for_a_vit_teacher_carry_its_position_embedding_and_learned_class_token():
    """Map -> ViT tokens: the connector's map, resized to the teacher's grid for the input's size,
    flattened row by row, plus the teacher's patch position embedding (resized bicubically), after
    the learned class token."""
    from mmpretrain.registry import MODELS
    vit = MODELS.build(dict(type='VisionTransformer', img_size=32, patch_size=8,
                            arch=dict(embed_dims=4, num_layers=1, num_heads=1,
                                      feedforward_channels=8)))
    torch.nn.init.normal_(vit.pos_embed)
    teacher_layout = StateLayout(tokens=True, stride=8.0, extra_tokens=1)
    teacher_state = torch.randn(1, 1 + 16, 4)
    change = LayoutChange(StateLayout(tokens=False, stride=8.0), teacher_layout, teacher_state,
                          teacher_position_embedding(vit, 4))
    torch.testing.assert_close(change.extra_tokens.data, teacher_state[:, :1])
    student_map = torch.randn(2, 4, 6, 6)  # a 48-px input at stride 8
    tokens = change(student_map, torch.nn.Identity(), (48, 48))
    position = torch.nn.functional.interpolate(
        vit.pos_embed[:, 1:].transpose(1, 2).reshape(1, 4, 4, 4), size=(6, 6), mode='bicubic',
        align_corners=False)
    expected = (student_map + position).flatten(2).transpose(1, 2)
    assert tokens.shape == (2, 1 + 36, 4)
    torch.testing.assert_close(tokens[:, 1:], expected)
    torch.testing.assert_close(tokens[:, :1], teacher_state[:, :1].expand(2, -1, -1))
    # a student map of another size is resized to the teacher's grid (here 5 × 5 for 40 px)
    assert change(torch.randn(2, 4, 3, 3), torch.nn.Identity(), (40, 40)).shape == (2, 26, 4)


def test_a_retinanet_with_a_swin_backbone_teaches_one_with_a_resnet(tmp_path, shapes_root):
    """Detection across architectures: the demo's RetinaNet with mmdet's Swin as the teacher (stage
    states (B, H·W, C) tokens that carry no grid; its FPN reads stages 2-4) and with its ResNet-18
    as the student: every hybrid changes layout, trains, and leaves the teacher unchanged."""
    init_default_scope('mmdet')
    swin = {'model.backbone': dict(
        _delete_=True, type='SwinTransformer', embed_dims=16, depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1], window_size=2, out_indices=(0, 1, 2, 3), convert_weights=False,
        init_cfg=None), 'model.neck.in_channels': [16, 32, 64, 128]}
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'swin.pth'), swin, seed=2)
    # (mmdet's ResNet zero-initializes each residual branch's last BN, which would hold the
    # gradients of the branch's other parameters at 0 until a step has moved it)
    model = BlockwiseDistiller(
        student=detector_cfg(RETINANET, backbone=dict(zero_init_residual=False)),
        distill_losses=dict(
            loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid')),
        teacher=dict(config=RETINANET, checkpoint=checkpoint, cfg_options=swin))
    model.init_weights()
    assert sorted(model.hybrids.layout_changes) == ['stage1', 'stage2', 'stage3', 'stage4']
    assert [model.hybrids.connectors[f'stage{i}'].conv.weight.shape[:2] for i in (1, 4)] == [
        (16, 64), (128, 512)]
    teacher_before = {key: value.clone() for key, value in model.teacher.state_dict().items()}
    batch = batch_of(shapes_root)
    data = model.data_preprocessor(batch, training=True)
    hybrid_term = model.loss(**data)['hybrid1.distill.loss_kd']
    first = list(model.student.backbone.layer1.parameters())
    gradients = torch.autograd.grad(hybrid_term, first, allow_unused=True)
    assert all(grad is not None and grad.abs().sum() > 0 for grad in gradients)
    log_vars = model.train_step(batch, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01)))
    assert {f'hybrid{stage}.distill.loss_kd' for stage in range(1, 5)} <= set(log_vars)
    assert all(torch.isfinite(value) for value in log_vars.values())
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key


@pytest.mark.parametrize('student, teacher', [('maps-convnext', 'tokens-deit'),
                                              ('tokens-deit', 'maps-convnext')])
def test_a_change_of_layout_trains_under_bf16_autocast(student, teacher, tmp_path):
    """--amp on CPU: the connected states (a bfloat16 map plus the teacher's float32 position
    embedding and class token) feed the teacher's later stages, and every term stays finite."""
    model = layout_pair(student, teacher, tmp_path)
    data = model.data_preprocessor(make_batch(size=32), training=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(**data)
    assert {f'hybrid{stage}.distill.loss_kd' for stage in range(1, 5)} <= set(losses)
    assert all(torch.isfinite(value) for value in losses.values())
    gradients = torch.autograd.grad(losses['hybrid1.distill.loss_kd'],
                                    list(model.hybrids.connectors.stage1.parameters()))
    assert all(grad.abs().sum() > 0 for grad in gradients)
