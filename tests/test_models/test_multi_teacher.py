"""Several teachers at once (``Distiller(teachers=...)``): each frozen and loaded like the single
teacher, each with its own losses and weight, none saved with the student."""

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from mmkd_plugins.checkpoint import extract_student_state_dict
from mmkd_plugins.models import Distiller
from mmkd_plugins.models.losses import DISTLoss, binary_kd_loss, kd_loss
from mmkd_plugins.models.task_adapters import flatten_levels
from mmkd_plugins.models.teachers import build_model_from_config, load_model_config
from mmkd_plugins.registry import MODELS
from ..conftest import STUDENT_CONFIG, TEACHER_CONFIG, save_random_checkpoint
from ..support.classifiers import backbone_call_order, make_batch, student_model_cfg
from ..support.detectors import RETINANET, batch_of, detector_cfg


@pytest.fixture(scope='module')
def two_checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('two_teachers')
    return [save_random_checkpoint(TEACHER_CONFIG, str(folder / f't{seed}.pth'), seed=seed)
            for seed in (1, 2)]


def build(checkpoints, **second):
    teachers = dict(
        first=dict(config=TEACHER_CONFIG, checkpoint=checkpoints[0],
                   distill_losses=dict(loss_kd=dict(type='KDLoss', tau=4.0))),
        second=dict(dict(config=TEACHER_CONFIG, checkpoint=checkpoints[1], weight=0.5,
                         distill_losses=dict(loss_dist=dict(type='DISTLoss'))), **second))
    return Distiller(student=student_model_cfg(), teachers=teachers)


def test_each_teacher_has_its_losses_and_weight(two_checkpoints):
    model = build(two_checkpoints).eval()
    data = model.data_preprocessor(make_batch(), training=False)
    losses = model(**data, mode='loss')
    assert set(losses) == {'student.loss', 'distill.first.loss_kd', 'distill.second.loss_dist'}
    student_logits = model.student(data['inputs'], mode='tensor')
    first = model.teachers['first'](data['inputs'], mode='tensor')
    second = model.teachers['second'](data['inputs'], mode='tensor')
    assert not torch.equal(first, second)
    torch.testing.assert_close(losses['distill.first.loss_kd'],
                               kd_loss(student_logits, first, 4.0))
    torch.testing.assert_close(losses['distill.second.loss_dist'],
                               0.5 * DISTLoss()(student_logits, second))


def test_classifier_teachers_run_before_the_students_forward(two_checkpoints):
    """As for one teacher (their logits depend on the batch alone)."""
    model = build(two_checkpoints)
    data = model.data_preprocessor(make_batch(), training=True)
    order = backbone_call_order(model, data, dict(model.teachers, student=model.student))
    assert order == ['first', 'second', 'student']


def test_teachers_stay_frozen_and_out_of_checkpoints(two_checkpoints):
    model = build(two_checkpoints)
    model.train()
    assert all(not module.training for teacher in model.teachers.values()
               for module in teacher.modules())
    before = {name: {k: v.clone() for k, v in teacher.state_dict().items()}
              for name, teacher in model.teachers.items()}
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log_vars = model.train_step(make_batch(), optim_wrapper)
    assert float(log_vars['loss']) == pytest.approx(sum(
        float(log_vars[key]) for key in log_vars if key != 'loss'), rel=1e-5)
    for name, teacher in model.teachers.items():
        assert all(torch.equal(v, before[name][k]) for k, v in teacher.state_dict().items())
        assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    teacher_tensors = {id(tensor) for teacher in model.teachers.values()
                       for tensor in (*teacher.parameters(), *teacher.buffers())}
    assert teacher_tensors and not teacher_tensors & {
        id(tensor) for tensor in (*model.parameters(), *model.buffers())}  # out of the tree
    state = model.state_dict()
    assert not any(key.startswith('teachers.') for key in state)
    fresh = build(two_checkpoints)
    fresh.load_state_dict(state, strict=True)
    stock = build_model_from_config(load_model_config(STUDENT_CONFIG, 'test'))
    stock.load_state_dict(extract_student_state_dict(state), strict=True)


def test_a_bad_teacher_entry_is_named(two_checkpoints, tmp_path):
    options = dict(model=dict(head=dict(num_classes=7)))
    seven = save_random_checkpoint(TEACHER_CONFIG, str(tmp_path / 't7.pth'), options)
    with pytest.raises(ValueError, match=r'model\.teachers\.second: the teacher predicts 7 '
                                         r'classes and the student 10'):
        build(two_checkpoints, checkpoint=seven, cfg_options=options)
    with pytest.raises(FileNotFoundError, match=r'model\.teachers\.second\.checkpoint'):
        build(two_checkpoints, checkpoint='/nonexistent/t.pth')
    with pytest.raises(ValueError, match=r"model\.teachers\.second: expected .*'ckpt'"):
        build(two_checkpoints, ckpt='x')


def test_each_of_two_detector_teachers_is_distilled_from_its_own_class_maps(tmp_path, shapes_root):
    init_default_scope('mmdet')
    checkpoints = [save_random_checkpoint(RETINANET, str(tmp_path / f'r{seed}.pth'), seed=seed)
                   for seed in (1, 2)]
    sigmoid_kd = dict(loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid'))
    model = Distiller(
        student=detector_cfg(RETINANET),
        teachers={name: dict(config=RETINANET, checkpoint=path, distill_losses=sigmoid_kd)
                  for name, path in zip(('a', 'b'), checkpoints)})
    data = model.data_preprocessor(batch_of(shapes_root), training=True)
    losses = model(**data, mode='loss')
    student_levels = flatten_levels(model.student_recorder.outputs['bbox_head'][0])
    for name in ('a', 'b'):  # each teacher's own class maps, by hand
        teacher_levels = flatten_levels(model.teachers[name](data['inputs'], mode='tensor')[0])
        expected = sum(binary_kd_loss(s, t, 1.0) for s, t in zip(student_levels, teacher_levels))
        torch.testing.assert_close(losses[f'distill.{name}.loss_kd'], expected)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(batch_of(shapes_root), optim_wrapper)
    assert {'student.loss_cls', 'distill.a.loss_kd', 'distill.b.loss_kd'} <= set(log_vars)


def test_configs_naming_the_former_multi_teacher_class_build_the_distiller(two_checkpoints):
    """``type='mmkd_plugins.MultiTeacherDistiller'`` (configs written before one distiller took one
    or several teachers) builds the same distiller with the same losses."""
    teachers = dict(only=dict(config=TEACHER_CONFIG, checkpoint=two_checkpoints[0],
                              distill_losses=dict(loss_kd=dict(type='KDLoss'))))
    model = MODELS.build(dict(type='mmkd_plugins.MultiTeacherDistiller',
                              student=student_model_cfg(),
                              teachers=teachers))
    assert type(model) is Distiller and set(model.teachers) == {'only'}
    assert list(model.distill_losses['only']) == ['loss_kd']


@pytest.mark.parametrize('arguments, message', [
    (dict(), 'give teacher=dict'),
    (dict(teacher=dict(config=TEACHER_CONFIG), teachers=dict()), 'not both'),
    (dict(teacher=dict(config=TEACHER_CONFIG)), r'model\.distill_losses: the losses'),
    (dict(teachers=dict(), distill_losses=dict(loss_kd=dict(type='KDLoss'))),
     'each entry holds its own distill_losses'),
    (dict(teachers=dict()), 'at least one teacher'),
])
def test_a_distiller_is_refused_unless_given_teacher_or_teachers_with_their_losses_in_place(
        arguments, message):
    with pytest.raises(ValueError, match=message):
        Distiller(student=student_model_cfg(), **arguments)


def test_the_teacher_cache_and_the_teacher_attribute_refuse_several_teachers(two_checkpoints):
    model = build(two_checkpoints)
    with pytest.raises(ValueError, match='the teacher cache serves one teacher'):
        model.enable_teacher_cache()
    with pytest.raises(TypeError, match=r'2 teachers \(model\.teachers\): use \.teachers'):
        model.teacher


def test_a_teacher_named_teacher_among_several_is_one_of_them(two_checkpoints):
    model = Distiller(student=student_model_cfg(), teachers={
        name: dict(config=TEACHER_CONFIG, checkpoint=path,
                   distill_losses=dict(loss_kd=dict(type='KDLoss')))
        for name, path in zip(('teacher', 'other'), two_checkpoints)})
    data = model.data_preprocessor(make_batch(), training=True)
    assert {'distill.teacher.loss_kd', 'distill.other.loss_kd'} <= set(model(**data, mode='loss'))
    with pytest.raises(ValueError, match='the teacher cache serves one teacher'):
        model.enable_teacher_cache()
