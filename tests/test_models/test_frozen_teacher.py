"""The frozen teacher stays out of everything that walks the model's module tree: mmengine's
optimizer constructors, EMA averaging, state dicts; moving the model still moves it."""

import pytest
import torch
from mmengine.model import ExponentialMovingAverage
from mmengine.optim import build_optim_wrapper

from mmkd_plugins.models import Distiller
from ..conftest import STUDENT_CONFIG, save_random_checkpoint
from ..support.classifiers import KD, build_distiller, make_batch, student_model_cfg


def teacher_tensor_ids(model) -> set:
    return {id(t) for t in (*model.teacher.parameters(), *model.teacher.buffers())}


def optimized_tensor_ids(optim_wrapper) -> set:
    return {id(p) for group in optim_wrapper.optimizer.param_groups for p in group['params']}


@pytest.mark.parametrize('paramwise_cfg', [None, dict(norm_decay_mult=0.0)],
                         ids=['plain', 'paramwise'])
def test_the_optimizer_holds_the_student_and_not_the_teacher(teacher_checkpoint,
                                                           paramwise_cfg):
    model = build_distiller(teacher_checkpoint)
    cfg = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
    if paramwise_cfg:
        cfg['paramwise_cfg'] = paramwise_cfg
    optimized = optimized_tensor_ids(build_optim_wrapper(model, cfg))
    assert not optimized & teacher_tensor_ids(model)
    assert optimized == {id(p) for p in model.student.parameters()}


def test_the_optimizer_state_resumes_into_a_distiller_whose_teacher_has_another_size(
        teacher_checkpoint, tmp_path):
    """The optimizer state of a run with one teacher loads into a run with another teacher of a
    different size (the param groups are the student's alone)."""
    cfg = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    first = build_distiller(teacher_checkpoint)
    optim_wrapper = build_optim_wrapper(first, cfg)
    first.train_step(make_batch(), optim_wrapper)
    smaller = save_random_checkpoint(STUDENT_CONFIG, str(tmp_path / 'small_teacher.pth'))
    second = Distiller(student=student_model_cfg(), distill_losses=KD,
                       teacher=dict(config=STUDENT_CONFIG, checkpoint=smaller))
    assert sum(p.numel() for p in second.teacher.parameters()) != sum(
        p.numel() for p in first.teacher.parameters())
    second.load_state_dict(first.state_dict(), strict=True)
    resumed = build_optim_wrapper(second, cfg)
    resumed.load_state_dict(optim_wrapper.state_dict())
    momentum = [resumed.optimizer.state[p]['momentum_buffer'] for p in second.parameters()]
    assert len(momentum) == len(list(first.student.parameters()))


def test_the_ema_copy_shares_the_teacher_and_averages_the_student_only(teacher_checkpoint):
    model = build_distiller(teacher_checkpoint)
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    ema = ExponentialMovingAverage(model, momentum=0.5)
    assert ema.module.teacher is model.teacher  # no second teacher in memory
    assert not any(key.startswith('teacher') for key in ema.avg_parameters)
    optim_wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.5)))
    for _ in range(2):  # the first update copies, the second averages
        model.train_step(make_batch(), optim_wrapper)
        ema.update_parameters(model)
    raw = dict(model.student.named_parameters())['head.fc.weight']
    averaged = dict(ema.module.student.named_parameters())['head.fc.weight']
    assert not torch.equal(raw, averaged)
    assert all(torch.equal(v, teacher_before[k]) for k, v in model.teacher.state_dict().items())


def test_moving_the_model_moves_the_teacher(teacher_checkpoint):
    model = build_distiller(teacher_checkpoint).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in model.teacher.parameters())
    assert all(p.dtype == torch.float64 for p in model.student.parameters())
