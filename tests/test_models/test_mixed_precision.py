"""Under mixed precision (``--amp``) the teacher runs in the student's reduced precision, and the
losses still compute in float32.

On this CPU-only suite, ``torch.autocast('cpu', dtype=torch.bfloat16)`` around a real ``train_step``
stands in for ``tools/train.py --amp`` (mmengine's ``AmpOptimWrapper`` needs an accelerator, so the
CUDA variant runs only where one is present).
"""

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from ..conftest import save_random_checkpoint
from ..support.classifiers import build_distiller, make_batch
from ..support.detectors import RETINANET, batch_of, detector_cfg, distiller_for

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def first_conv(module: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))


def dtypes_seen_by(module: torch.nn.Module) -> list:
    """Register a hook that records the dtype of ``module``'s output at each call."""
    seen = []
    module.register_forward_hook(lambda mod, args, output: seen.append(output.dtype))
    return seen


def train_step_under_autocast(model, batch, device: str) -> dict:
    model.to(device)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    reduced = torch.bfloat16 if device == 'cpu' else torch.float16
    with torch.autocast(device, dtype=reduced):
        return model.train_step(batch, optim_wrapper), reduced


def assert_finite_float32_losses(log_vars: dict) -> None:
    distill = {key: value for key, value in log_vars.items() if key.startswith('distill.')}
    assert distill and all(torch.isfinite(torch.as_tensor(v)) for v in distill.values())


@pytest.mark.parametrize('device', DEVICES)
def test_the_classifier_teacher_runs_in_the_autocast_precision(teacher_checkpoint, device):
    model = build_distiller(teacher_checkpoint, losses=dict(
        loss_kd=dict(type='KDLoss', tau=4.0), loss_dist=dict(type='DISTLoss')))
    teacher_conv, student_conv = dtypes_seen_by(first_conv(model.teacher)), dtypes_seen_by(
        first_conv(model.student))
    losses_seen = []
    model.distill_losses.loss_kd.register_forward_hook(
        lambda mod, args, output: losses_seen.append(output.dtype))
    log_vars, reduced = train_step_under_autocast(model, make_batch(), device)
    assert teacher_conv == [reduced] and student_conv == [reduced]
    assert losses_seen == [torch.float32]
    assert_finite_float32_losses(log_vars)


@pytest.mark.parametrize('device', DEVICES)
def test_the_retinanet_teacher_runs_in_the_autocast_precision(tmp_path, shapes_root, device):
    init_default_scope('mmdet')
    checkpoint = save_random_checkpoint(RETINANET, str(tmp_path / 'retina.pth'))
    model = distiller_for(detector_cfg(RETINANET), RETINANET, checkpoint,
                          dict(loss_kd=dict(type='KDLoss', tau=1.0, activation='sigmoid')))
    teacher_conv = dtypes_seen_by(first_conv(model.teacher))
    log_vars, reduced = train_step_under_autocast(model, batch_of(shapes_root), device)
    assert teacher_conv == [reduced]
    assert_finite_float32_losses(log_vars)


def test_a_bf16_teacher_stays_bf16_without_an_enclosing_autocast(teacher_checkpoint):
    model = build_distiller(teacher_checkpoint, bf16=True)
    teacher_conv, student_conv = dtypes_seen_by(first_conv(model.teacher)), dtypes_seen_by(
        first_conv(model.student))
    model.train_step(make_batch(), OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01)))
    assert teacher_conv == [torch.bfloat16] and student_conv == [torch.float32]
