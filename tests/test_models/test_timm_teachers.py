"""Teachers from timm (mmpretrain's TimmClassifier): weights in timm's own files, the teacher's own
preprocessing and input size, its label space checked at build time."""

import pytest
import torch
from mmengine.registry import init_default_scope

from mmkd_plugins.models import BlockwiseDistiller, Distiller
from ..conftest import TEACHER_CONFIG
from ..support.classifiers import KD, make_batch, student_model_cfg

timm = pytest.importorskip('timm')


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    init_default_scope('mmpretrain')


def timm_teacher(tmp_path, model_name: str, file_format: str = 'safetensors', **kwargs):
    """A teacher config for ``model_name`` and a checkpoint with random weights in timm's own format
    (a bare state dict, as timm and the HuggingFace hub ship them); the timm model."""
    torch.manual_seed(0)
    network = timm.create_model(model_name, pretrained=False, **kwargs).eval()
    path = str(tmp_path / f'{model_name}.{file_format}')
    if file_format == 'safetensors':
        from safetensors.torch import save_file
        save_file(network.state_dict(), path)
    else:
        torch.save(network.state_dict(), path)
    config = dict(model=dict(type='TimmClassifier', model_name=model_name, pretrained=False,
                             **kwargs))
    return dict(config=config, checkpoint=path), network


@pytest.mark.parametrize('file_format', ['safetensors', 'pth'])
def test_a_timm_teacher_sees_the_batch_as_timm_preprocesses_it(tmp_path, file_format):
    """The student's batch (BGR pixels as mmcv loads them, normalized for the student) reaches the
    timm teacher as timm's own preprocessing gives it: RGB in [0, 1], normalized with its
    pretrained_cfg's mean and std; the teacher's logits are the timm network's on that."""
    teacher, network = timm_teacher(tmp_path, 'resnet18', file_format, num_classes=10)
    model = Distiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)
    batch = make_batch()
    data = model.data_preprocessor(batch, training=False)
    settings = timm.data.resolve_data_config({}, model=network)
    mean = torch.tensor(settings['mean']).reshape(1, 3, 1, 1)
    std = torch.tensor(settings['std']).reshape(1, 3, 1, 1)
    rgb = torch.stack(batch['inputs']).float().flip(1) / 255
    expected = (rgb - mean) / std
    got = model.teacher_source.inputs(data['inputs'], data['data_samples'])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    logits = model.run_teacher(data['inputs'], data['data_samples'])['logits']
    with torch.no_grad():
        torch.testing.assert_close(logits, network(expected), rtol=1e-4, atol=1e-4)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert 0 < float(losses['distill.loss_kd']) < float('inf')


def test_a_fixed_size_timm_teacher_gets_the_batch_at_its_size(tmp_path):
    """A timm ViT built for 32×32 (timm marks ViTs as fixed-size) for a 16×16 student."""
    teacher, _ = timm_teacher(tmp_path, 'vit_tiny_patch16_224', img_size=32, num_classes=10)
    model = Distiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)
    seen = []
    model.teacher.model.patch_embed.register_forward_hook(
        lambda module, args, output: seen.append(tuple(args[0].shape[-2:])))
    data = model.data_preprocessor(make_batch(size=16), training=True)
    model.run_teacher(data['inputs'], data['data_samples'])
    assert seen == [(32, 32)]


def test_a_timm_teacher_of_another_label_space_is_refused_at_build_time(tmp_path):
    teacher, _ = timm_teacher(tmp_path, 'resnet18', num_classes=21)
    with pytest.raises(ValueError, match=r"model\.teacher: the teacher predicts 21 classes and "
                       r"the student 10 \(the teacher's model\.num_classes, timm's"):
        Distiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)


def test_a_timm_teacher_joins_several_teachers_and_block_wise_says_it_cannot_split_it(
        tmp_path, teacher_checkpoint):
    teacher, _ = timm_teacher(tmp_path, 'resnet18', num_classes=10)
    model = Distiller(student=student_model_cfg(), teachers=dict(
        timm_resnet=dict(teacher, distill_losses=dict(loss_kd=dict(type='KDLoss'))),
        zoo_resnet=dict(config=TEACHER_CONFIG, checkpoint=teacher_checkpoint,
                        distill_losses=dict(loss_dist=dict(type='DISTLoss')))))
    data = model.data_preprocessor(make_batch(), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert all(0 < float(value) < float('inf') for key, value in losses.items()
               if 'loss_' in key and 'student' not in key)
    with pytest.raises(TypeError, match=r"model\.teacher\.config: block-wise distillation "
                       r"splits the teacher's backbone into stages; a TimmClassifier teacher "
                       r"has none"):
        BlockwiseDistiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)
