"""Block-wise distillation on every stage layout: CNN maps (ConvNeXt), plain tokens with a class
token (DeiT), tokens whose backbone outputs (class, distillation) token pairs (DeiT distilled), a
hierarchical transformer whose stages pass (tokens, (H, W)) (Swin), and a detector's backbone whose
later stages feed a neck and a dense head (RTMDet's CSPNeXt), on small versions of the stock
configs."""

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from torch import nn

from mmkd_plugins.checkpoint import extract_student_state_dict
from mmkd_plugins.models import BlockwiseDistiller
from mmkd_plugins.models.blockwise import BackboneStages, split_backbone
from mmkd_plugins.models.blockwise.stage_probe import (check_stage_split, probe_image_size,
                                                       probe_stages)
from mmkd_plugins.models.teachers import build_model_from_config, load_model_config
from ..conftest import save_random_checkpoint
from ..support.backbone_layouts import LAYOUTS, model_cfg
from ..support.classifiers import KD, make_batch
from ..support.detectors import batch_of

IDENTITY = dict(connector=dict(type='IdentityConnector'), probe_size=64)
DETECTORS = ('detector-rtmdet', )
# the first stage's modules, whose parameters a stage-1 hybrid's term must reach (a Swin
# stage's patch merging runs after its state, in the next stage)
FIRST_STAGE = {'maps-convnext': 'stages.0', 'tokens-deit': 'layers.0',
               'two-tokens-deit-distilled': 'layers.0', 'hierarchical-swin': 'stages.0.blocks',
               'detector-rtmdet': 'stage1'}


def batch_for(layout: str, request: pytest.FixtureRequest) -> dict:
    """A batch of 32-pixel random images with labels, or of generated shapes with boxes."""
    if layout in DETECTORS:
        init_default_scope('mmdet')
        return batch_of(request.getfixturevalue('shapes_root'))
    return make_batch(size=32)


def same_network_distiller(layout: str, tmp_path, hybrids: dict) -> BlockwiseDistiller:
    """Student and teacher of one architecture with the teacher's random weights."""
    config, options = LAYOUTS[layout]
    checkpoint = save_random_checkpoint(config, str(tmp_path / f'{layout}.pth'), options, seed=4)
    student = model_cfg(layout, init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    model = BlockwiseDistiller(
        student=student, teacher=dict(config=config, checkpoint=checkpoint,
                                      cfg_options=options),
        distill_losses=KD, hybrids=hybrids)
    model.init_weights()
    return model


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_a_same_network_with_identity_connectors_gives_the_teachers_logits_and_trains(
        layout, tmp_path, request):
    batch = batch_for(layout, request)
    model = same_network_distiller(layout, tmp_path, IDENTITY).eval()
    data = model.data_preprocessor(batch, training=False)
    _, outputs = model.run_student(data['inputs'], data['data_samples'])
    states = {stage: model.student_recorder.outputs[name]
              for stage, name in model.hybrids.student_modules.items()}
    hybrids = model.hybrids(states, model.teacher, data['inputs'], data['data_samples'])
    teacher_logits = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    assert [hybrid.stage for hybrid in hybrids] == [1, 2, 3, 4]
    # not a trivially equal comparison (a dense head's logits are a list, one per level)
    assert torch.cat([level.flatten() for level in teacher_logits]).std() > 1e-3
    for hybrid in hybrids:
        torch.testing.assert_close(hybrid.logits, teacher_logits, rtol=1e-4, atol=1e-5)

    # trained with learned connectors: one hybrid's term alone reaches the student's first
    # stage; the teacher stays bit-identical; the export loads into the stock config
    model = same_network_distiller(layout, tmp_path, dict(probe_size=64)).train()
    teacher_before = {key: value.clone() for key, value in model.teacher.state_dict().items()}
    data = model.data_preprocessor(batch, training=True)
    hybrid_term = model.loss(**data)['hybrid1.distill.loss_kd']
    first_stage = list(model.student.backbone.get_submodule(FIRST_STAGE[layout]).parameters())
    gradients = torch.autograd.grad(hybrid_term, first_stage, allow_unused=True)
    assert all(grad is not None and grad.abs().sum() > 0 for grad in gradients)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log_vars = model.train_step(batch, optim_wrapper)
    assert {f'hybrid{stage}.distill.loss_kd' for stage in range(1, 5)} <= set(log_vars)
    assert all(torch.isfinite(value) for value in log_vars.values())
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    config, options = LAYOUTS[layout]
    stock = build_model_from_config(load_model_config(config, 'test', options))
    stock.load_state_dict(extract_student_state_dict(model.state_dict()), strict=True)


class StemSkipNet(nn.Module):
    """Three conv stages whose forward adds the stem's output to stage 2's: not a cut at stage 1 or
    2 (what follows them also reads the stem)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.stage1, self.stage2, self.stage3 = (nn.Conv2d(3, 4, 3, padding=1),
                                                            *(nn.Conv2d(4, 4, 3, padding=1)
                                                              for _ in range(3)))

    def forward(self, x):
        stem = self.stem(x)
        return (self.stage3(self.stage2(self.stage1(stem)) + stem), )


def test_a_split_that_is_not_a_cut_of_the_forward_is_refused_naming_the_stage():
    net = StemSkipNet().eval()
    probe = torch.randn(1, 3, 8, 8)
    split = BackboneStages(stages=(('stage1', ), ('stage2', ), ('stage3', )))
    states, outputs = probe_stages(net, split, probe, 'field')
    with pytest.raises(ValueError, match=r"field: this StemSkipNet is not a sequence of the "
                       r"stages \(stage1\) -> \(stage2\) -> \(stage3\): its forward continued "
                       r"from the state of stage 1 \('stage1'\) returns other outputs"):
        check_stage_split(net, split, states, outputs, probe, 'field')
    # the same forward is a cut after stage 2's sum (stage 3 reads only it)
    split = BackboneStages(stages=(('stage1', 'stage2', 'stage3'), ))
    states, outputs = probe_stages(net, split, probe, 'field')
    check_stage_split(net, split, states, outputs, probe, 'field')


class FixedSizeNet(StemSkipNet):
    """Built for 8×8 inputs only (as RepMLP and others check their input size)."""

    def forward(self, x):
        if x.shape[2:] != (8, 8):
            raise RuntimeError('input images must be 8×8')
        return super().forward(x)


def test_a_backbone_that_cannot_run_at_the_probe_size_is_refused_naming_the_sizes():
    split = BackboneStages(stages=(('stage1', ), ('stage2', ), ('stage3', )))
    with pytest.raises(ValueError, match=r'model\.student\.backbone: this FixedSizeNet does not '
                       r'run on a 16×16 image \(RuntimeError: input images must be 8×8\); '
                       r'block-wise hybrids run both backbones at one input size'):
        probe_stages(FixedSizeNet().eval(), split, torch.randn(1, 3, 16, 16),
                     'model.student.backbone')


@pytest.mark.parametrize('backbone, size', [
    (dict(type='VGG', depth=11, num_classes=10), 224),  # its classifier reads a 7×7 map
    (dict(type='VGG', depth=11, num_classes=10, with_last_pool=False), 112),
    (dict(type='Vig', arch='tiny'), 224),  # its position embedding is 14×14
    (dict(type='LeNet5', num_classes=10), 32),  # its classifier reads a 1×1 map; one channel
])
def test_a_backbone_built_for_one_input_size_is_probed_and_split_at_it(backbone, size):
    from mmpretrain.registry import MODELS
    net = MODELS.build(backbone)
    net.eval()  # (VGG's train() returns None)
    split = split_backbone(net, 'model.student.backbone')
    assert probe_image_size(None, [(net, split)]) == (size, size)
    probe = torch.randn(1, split.input_channels, size, size)
    states, outputs = probe_stages(net, split, probe, 'model.student.backbone')
    check_stage_split(net, split, states, outputs, probe, 'model.student.backbone')


def test_a_backbone_whose_patch_embeddings_return_the_grid_splits_after_them():
    """VAN reshapes each stage's tokens with the (H, W) its patch embedding returned."""
    from mmpretrain.registry import MODELS
    net = MODELS.build(dict(type='VAN', arch='tiny'))
    net.eval()  # (VAN's train() returns None)
    split = split_backbone(net, 'model.student.backbone')
    assert split.num_stages == 4
    probe = torch.randn(1, 3, 64, 64)
    states, outputs = probe_stages(net, split, probe, 'model.student.backbone')
    assert [tuple(state.shape) for state in states] == [(1, 256, 32), (1, 64, 64), (1, 16, 160),
                                                        (1, 4, 256)]
    check_stage_split(net, split, states, outputs, probe, 'model.student.backbone')


def test_a_teacher_that_cannot_run_at_the_students_input_size_is_refused_naming_it(tmp_path):
    """Hybrids run the teacher's later stages on the student's states, i.e. at the student's
    input size: a Swin teacher built for 128 px with 4×4 windows cannot take a 32-px student's
    stage-3 map (2×2), though both backbones run at the teacher's 128 px."""
    config, student_options = LAYOUTS['hierarchical-swin']
    teacher_options = dict(student_options)
    teacher_options['model.backbone'] = dict(student_options['model.backbone'], img_size=128,
                                             window_size=4, pad_small_map=False)
    checkpoint = save_random_checkpoint(config, str(tmp_path / 'swin128.pth'), teacher_options)
    with pytest.raises(ValueError, match=r'model\.teacher\.config backbone: this '
                       r'SwinTransformer does not run on a 32×32 image \(AssertionError: The '
                       r'input shape \(2, 2\) is smaller than the window size \(4\)'):
        BlockwiseDistiller(student=model_cfg('hierarchical-swin'),
                           teacher=dict(config=config, checkpoint=checkpoint,
                                        cfg_options=teacher_options),
                           distill_losses=KD)
