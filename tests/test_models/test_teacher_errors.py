"""Bad input fails at build time with a message naming the config field and what was expected.

One parametrised table covers every build-time case; a NaN loss during training is covered in
``tests/test_tools/test_reliability.py``.
"""

import shutil
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config

from mmkd_plugins.models import BlockwiseDistiller, Distiller
from mmkd_plugins.models.teachers import (build_model_from_config, build_teacher, load_model_config,
                                          load_teacher_weights)
from ..conftest import STUDENT_CONFIG, TEACHER_CONFIG, save_random_checkpoint
from ..support.classifiers import KD, build_distiller, student_model_cfg


def missing_checkpoint(tmp_path, teacher_checkpoint):
    return dict(teacher=dict(config=TEACHER_CONFIG, checkpoint='/nonexistent/no_such.pth'))


def unreachable_url(tmp_path, teacher_checkpoint):
    return dict(teacher=dict(config=TEACHER_CONFIG,
                             checkpoint='http://127.0.0.1:9/models/absent.pth'))


def missing_config(tmp_path, teacher_checkpoint):
    return dict(teacher=dict(config='configs/none.py', checkpoint=teacher_checkpoint))


def other_architecture(tmp_path, teacher_checkpoint):
    wrong = save_random_checkpoint(STUDENT_CONFIG, str(tmp_path / 'student.pth'))
    return dict(teacher=dict(config=TEACHER_CONFIG, checkpoint=wrong))


def missing_key(tmp_path, teacher_checkpoint):
    state = torch.load(teacher_checkpoint)['state_dict']
    del state['head.fc.weight']
    torch.save({'state_dict': state}, tmp_path / 'partial.pth')
    return dict(teacher=dict(config=TEACHER_CONFIG, checkpoint=str(tmp_path / 'partial.pth')))


def other_class_count(tmp_path, teacher_checkpoint):
    options = dict(model=dict(head=dict(num_classes=7)))
    checkpoint = save_random_checkpoint(TEACHER_CONFIG, str(tmp_path / 't7.pth'), options)
    return dict(teacher=dict(config=TEACHER_CONFIG, checkpoint=checkpoint, cfg_options=options))


def twenty_class_teacher(tmp_path, class_index_map=None):
    options = dict(model=dict(head=dict(num_classes=20)))
    checkpoint = save_random_checkpoint(TEACHER_CONFIG, str(tmp_path / 't20.pth'), options)
    teacher = dict(config=TEACHER_CONFIG, checkpoint=checkpoint, cfg_options=options)
    if class_index_map is not None:
        teacher['class_index_map'] = class_index_map
    return teacher


def class_map_too_short(tmp_path, teacher_checkpoint):
    return dict(teacher=twenty_class_teacher(tmp_path, list(range(9))))


def class_map_out_of_range(tmp_path, teacher_checkpoint):
    return dict(teacher=twenty_class_teacher(tmp_path, list(range(15, 25))))


def class_map_repeated(tmp_path, teacher_checkpoint):
    return dict(teacher=twenty_class_teacher(tmp_path, [0, 1, 2, 3, 4, 5, 6, 7, 8, 8]))


def class_map_for_blockwise(tmp_path, teacher_checkpoint):
    return dict(distiller=BlockwiseDistiller,
                teacher=twenty_class_teacher(tmp_path, list(range(0, 20, 2))))


def other_task(tmp_path, teacher_checkpoint):
    return dict(teacher=dict(config='mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
                             checkpoint=teacher_checkpoint))


def unknown_loss(tmp_path, teacher_checkpoint):
    return dict(distill_losses=dict(loss_x=dict(type='NoSuchLoss')))


def badly_named_loss(tmp_path, teacher_checkpoint):
    return dict(distill_losses=dict(kd=dict(type='KDLoss')))


def unknown_module(tmp_path, teacher_checkpoint):
    return dict(distill_losses=dict(loss_kd=dict(type='KDLoss', student_output='head.fcc')))


def module_the_teacher_never_runs(tmp_path, teacher_checkpoint):
    return dict(distill_losses=dict(loss_kd=dict(type='KDLoss', student_output='head.fc',
                                                 teacher_output='head.loss_module')))


def unknown_teacher_key(tmp_path, teacher_checkpoint):
    return dict(teacher=dict(config=TEACHER_CONFIG, checkpoint=teacher_checkpoint, ckpt='x'))


def mmpretrain_student(config: str, **backbone) -> dict:
    """A stock mmpretrain model with 10 classes, normalized as the demo's digits."""
    cfg = get_config(config)
    cfg.merge_from_dict(dict(model=dict(backbone=backbone, head=dict(num_classes=10))))
    return dict(cfg.model, data_preprocessor=student_model_cfg()['data_preprocessor'])


def unsplittable_backbone(tmp_path, teacher_checkpoint):
    return dict(distiller=BlockwiseDistiller, student=mmpretrain_student(
        'mmpretrain::hrnet/hrnet-w18_4xb32_in1k.py'))


def output_inside_a_stage(tmp_path, teacher_checkpoint):
    return dict(distiller=BlockwiseDistiller, student=mmpretrain_student(
        'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py', out_indices=(3, 7)))


def hybrid_stage_out_of_range(tmp_path, teacher_checkpoint):
    return dict(distiller=BlockwiseDistiller, hybrids=dict(stages=[0, 5]))


def connector_with_channels(tmp_path, teacher_checkpoint):
    return dict(distiller=BlockwiseDistiller,
                hybrids=dict(connector=dict(type='ConvBNConnector', in_channels=8)))


def identity_connector_across_widths(tmp_path, teacher_checkpoint):
    return dict(distiller=BlockwiseDistiller,
                hybrids=dict(connector=dict(type='IdentityConnector')))


def labels_mixed_by_batch_augments(tmp_path, teacher_checkpoint):
    student = student_model_cfg()
    student['data_preprocessor'] = dict(
        student['data_preprocessor'], batch_augments=dict(augments=dict(type='Mixup', alpha=1.)))
    return dict(student=student, distill_losses=dict(loss_dkd=dict(type='DKDLoss')))


BAD_INPUTS = [
    (missing_checkpoint, FileNotFoundError, r'model\.teacher\.checkpoint.*no_such\.pth'),
    (unreachable_url, FileNotFoundError,
     r'model\.teacher\.checkpoint: cannot download .*put the file at .*hub/checkpoints/absent'),
    (missing_config, FileNotFoundError, r'model\.teacher\.config.*configs/none\.py'),
    (other_architecture, ValueError,
     r'(?s)model\.teacher\.checkpoint.*does not match.*with another shape.*backbone\.conv1'),
    (missing_key, ValueError, r'1 keys missing in the checkpoint: head\.fc\.weight'),
    (other_class_count, ValueError,
     r'teacher predicts 7 classes and the student 10.*needs model\.teacher\.class_index_map'),
    (class_map_too_short, ValueError,
     r'model\.teacher\.class_index_map: 9 entries for a student of 10 classes'),
    (class_map_out_of_range, ValueError,
     r"class_index_map: teacher classes \[20, 21, 22, 23, 24\] are outside the teacher's 20"),
    (class_map_repeated, ValueError, r'class_index_map: teacher classes \[8\] are given to'),
    (class_map_for_blockwise, ValueError,
     r"model\.teacher\.class_index_map: block-wise hybrids end in the teacher's own head"),
    (other_task, TypeError,
     r'model\.teacher\.config: the student is a classifier but the teacher is a RetinaNet'),
    (unknown_loss, KeyError, r'model\.distill_losses\.loss_x.*NoSuchLoss'),
    (badly_named_loss, ValueError, r"'kd' must contain 'loss'"),
    (unknown_module, ValueError, r"student_output.*'head\.fcc'.*closest names: head\.fc"),
    (module_the_teacher_never_runs, ValueError,
     r"model\.distill_losses\.loss_kd\.teacher_output: the teacher never runs "
     r"'head\.loss_module'"),
    (unknown_teacher_key, ValueError, r"model\.teacher: expected dict\(config=.*'ckpt'"),
    (unsplittable_backbone, TypeError,
     r'model\.student\.backbone: block-wise distillation cannot split a HRNet into stages: '
     r'parallel branches at four resolutions exchange features in every stage'),
    (output_inside_a_stage, ValueError,
     r'model\.student\.backbone: MobileNetV2 out_indices \(3, 7\) returns layers \[3\] from '
     r'inside a stage.*within \(1, 2, 4, 7\)'),
    (hybrid_stage_out_of_range, ValueError,
     r'model\.hybrids\.stages: expected student stages paired with a teacher stage, of '
     r'\(1, 2, 3, 4\), got \[0, 5\]'),
    (connector_with_channels, ValueError,
     r"model\.hybrids\.connector \(stage 1\): \['in_channels'\] are inferred"),
    (labels_mixed_by_batch_augments, ValueError,
     r'model\.distill_losses\.loss_dkd: DKDLoss needs one class per sample, but the batch '
     r'augments \(Mixup/CutMix\) mix labels'),
    (identity_connector_across_widths, ValueError,
     r'model\.hybrids\.connector \(stage 1\): .*IdentityConnector needs equal shapes, but the '
     r'student stage has 8 channels and the teacher stage 32'),
]


@pytest.mark.parametrize('make_input,error,message', BAD_INPUTS,
                         ids=[case[0].__name__ for case in BAD_INPUTS])
def test_bad_input_is_refused_at_build_time(make_input, error, message, tmp_path, monkeypatch,
                                            teacher_checkpoint):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))  # an empty hub cache
    arguments = dict(student=student_model_cfg(),
                     teacher=dict(config=TEACHER_CONFIG, checkpoint=teacher_checkpoint),
                     distill_losses=KD)
    arguments.update(make_input(tmp_path, teacher_checkpoint))
    distiller = arguments.pop('distiller', Distiller)
    with pytest.raises(error, match=message):
        distiller(**arguments)


def test_url_teacher_is_read_from_torch_hub_cache_offline(tmp_path, monkeypatch,
                                                          teacher_checkpoint):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    shutil.copy(teacher_checkpoint, cache / 'teacher_digits-0123abcd.pth')
    model = build_distiller('http://127.0.0.1:9/models/teacher_digits-0123abcd.pth')
    loaded = torch.load(teacher_checkpoint)['state_dict']
    assert torch.equal(model.teacher.state_dict()['head.fc.weight'], loaded['head.fc.weight'])


def simulate_gpu(monkeypatch, name: str, major: int) -> None:
    """A CUDA device of compute capability ``major`` that can emulate bfloat16 (as a V100 can);
    torch's own ``is_bf16_supported`` then runs on it unchanged."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 0)
    monkeypatch.setattr(torch.cuda, 'get_device_properties',
                        lambda *args: SimpleNamespace(major=major, name=name))
    monkeypatch.setattr(torch.cuda, '_check_bf16_tensor_supported', lambda *args: True)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda *args: name)


def test_bf16_teacher_is_refused_on_a_gpu_that_only_emulates_bfloat16(monkeypatch,
                                                                      teacher_checkpoint):
    simulate_gpu(monkeypatch, 'Tesla V100', major=7)
    assert torch.cuda.is_bf16_supported()  # emulation counts by default
    with pytest.raises(ValueError, match=r'model\.teacher\.bf16: Tesla V100 has no bfloat16 '
                       r'support; leave the teacher in float32 \(bf16=False\)'):
        build_distiller(teacher_checkpoint, bf16=True)
    simulate_gpu(monkeypatch, 'A100', major=8)
    assert build_distiller(teacher_checkpoint, bf16=True).teacher_source.bf16


def tiny_vit(img_size: int, arch: str = 'deit-tiny') -> dict:
    width = {'deit-tiny': 192, 'deit-small': 384}[arch]
    return dict(model=dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch=arch, img_size=img_size, patch_size=8),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=width)))


def test_a_vit_checkpoint_at_another_image_size_loads_through_the_models_own_hook(tmp_path):
    """mmpretrain's ViT resizes ``pos_embed`` in a load-state-dict pre-hook: the strict check judges
    the keys after it, as the stock tools load them."""
    torch.manual_seed(0)
    at_64 = build_model_from_config(Config(tiny_vit(64)))
    path = str(tmp_path / 'vit64.pth')
    torch.save({'state_dict': at_64.state_dict()}, path)
    teacher = load_teacher_weights(build_teacher(tiny_vit(32)), path, 'model.teacher')
    assert teacher.backbone.pos_embed.shape == (1, 1 + 16, 192)  # resized from 1 + 64 tokens
    assert torch.equal(teacher.backbone.cls_token, at_64.backbone.cls_token)
    with pytest.raises(ValueError, match=r'(?s)model.teacher.checkpoint: .* keys with another '
                       r'shape: .*backbone.cls_token \(1, 1, 192\) vs model \(1, 1, 384\)'):
        load_teacher_weights(build_teacher(tiny_vit(32, 'deit-small')), path, 'model.teacher')


def tiny_swin_v2() -> dict:
    return dict(model=dict(
        type='ImageClassifier',
        backbone=dict(type='SwinTransformerV2', arch='tiny', img_size=32, window_size=[2, 2, 2, 1]),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=768)))


def test_buffers_that_the_models_own_load_hook_drops_are_not_missing_keys(tmp_path):
    """mmpretrain's Swin-V2 deletes ``relative_position_index`` and ``relative_coords_table``
    from every state dict it loads (it recomputes them from the window size), so they are
    missing from what reaches the model even when its own state dict is loaded: the strict
    check must not count them (the model-zoo Swin-V2 checkpoints hold them), and must still
    count a key the checkpoint really lacks."""
    torch.manual_seed(0)
    swin = build_model_from_config(Config(tiny_swin_v2()))
    state = swin.state_dict()
    assert any(key.endswith('relative_coords_table') for key in state)
    path = str(tmp_path / 'swinv2.pth')
    torch.save({'state_dict': state}, path)
    teacher = load_teacher_weights(build_teacher(tiny_swin_v2()), path, 'model.teacher')
    assert torch.equal(teacher.head.fc.weight, swin.head.fc.weight)
    del state['head.fc.bias']
    torch.save({'state_dict': state}, path)
    with pytest.raises(ValueError, match=r'(?s)1 keys missing in the checkpoint: head\.fc\.bias$'):
        load_teacher_weights(build_teacher(tiny_swin_v2()), path, 'model.teacher')


def test_a_package_config_without_default_scope_builds_in_its_package_scope():
    """mmpretrain's DINOv2 configs hold only a model (no default_scope): as a teacher config their
    types resolve in mmpretrain, the package that named them."""
    config = 'mmpretrain::dinov2/vit-small-p14_dinov2-pre_headless.py'
    assert 'default_scope' not in get_config(config)
    assert load_model_config(config, 'model.teacher.config').default_scope == 'mmpretrain'
    assert type(build_teacher(config)).__name__ == 'ImageClassifier'


def test_a_teacher_of_another_label_space_teaches_through_its_class_index_map(tmp_path):
    """A 20-class teacher for the 10-class student: the distilled teacher logits are the teacher's
    own logits of the mapped classes, in the student's order."""
    class_index_map = [19, 0, 2, 4, 6, 8, 10, 12, 14, 16]
    teacher = twenty_class_teacher(tmp_path, class_index_map)
    distiller = Distiller(student=student_model_cfg(), teacher=teacher, distill_losses=KD)
    inputs = torch.randn(3, 3, 16, 16)
    logits = distiller.teacher_source.logits(inputs, None, distiller.student_recorder)
    with torch.no_grad():
        full = distiller.teacher(distiller.teacher_source.inputs(inputs), mode='tensor')
    assert logits.shape == (3, 10)
    torch.testing.assert_close(logits, full[:, class_index_map], rtol=0, atol=0)
    assert not [key for key in distiller.state_dict() if 'class_index_map' in key]
