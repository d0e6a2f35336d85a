"""CTKD: gradient reversal, the temperature's range, the λ curriculum, and training with it."""

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from mmkd_plugins.checkpoint import extract_student_state_dict
from mmkd_plugins.models.losses import (CurriculumTemperature, KDLoss, curriculum_lambda, kd_loss,
                                        reverse_gradient)
from ..support.classifiers import build_distiller, make_batch
from ..support.loss_references import authors_lambda


@pytest.fixture
def epoch():
    """Set the runner's current epoch in the message hub; back to 0 afterwards."""
    hub = MessageHub.get_current_instance()
    yield lambda value: hub.update_info('epoch', value)
    hub.update_info('epoch', 0)


def test_reversal_layer_gradient_is_minus_lambda_times_the_incoming_one():
    x = torch.randn(3, 4, requires_grad=True)
    incoming = torch.randn(3, 4)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    y.backward(incoming)
    torch.testing.assert_close(x.grad, -0.3 * incoming)


def test_curriculum_lambda_is_the_authors_schedule_scaled_by_lambda_max():
    """Per epoch (from the runner's epoch): tests/test_models/test_loss_parity.py."""
    for epoch_from_one in range(1, 16):
        assert curriculum_lambda(epoch_from_one, 2.0, 10) == pytest.approx(
            authors_lambda(epoch_from_one, 2.0, 10))


@pytest.mark.parametrize('mode', ['global', 'instance'])
def test_temperature_starts_at_init_and_stays_in_range(mode):
    temperature = CurriculumTemperature(mode=mode, init_tau=4.0, num_classes=5)
    logits = torch.randn(6, 5) * 1000
    tau = temperature(logits, logits)
    assert torch.allclose(tau, torch.tensor(4.0))
    with torch.no_grad():
        for parameter in temperature.parameters():
            parameter.fill_(1e4)  # push θ far out
    assert 1.0 <= float(temperature(logits, -logits).min()) <= float(
        temperature(logits, -logits).max()) <= 21.0
    assert tau.shape == (() if mode == 'global' else (6, 1))


def test_the_temperature_ascends_the_kd_loss_the_student_descends(epoch):
    epoch(4)  # the authors' epoch 5 of 10: λ = 0.5
    loss = KDLoss(tau=dict(type='CurriculumTemperature', init_tau=3.0, warmup_epochs=10))
    student = torch.randn(8, 5, requires_grad=True)
    teacher = torch.randn(8, 5)
    loss(student, teacher).backward()
    # Reference: the plain gradient of kd_loss wrt theta through tau = 1 + 20 sigmoid(theta).
    theta = loss.temperature.theta.detach().clone().requires_grad_()
    kd_loss(student.detach(), teacher, 1 + 20 * torch.sigmoid(theta)).backward()
    torch.testing.assert_close(loss.temperature.theta.grad, -0.5 * theta.grad)
    assert student.grad.abs().sum() > 0


def test_instance_wise_kd_uses_one_temperature_per_row():
    torch.manual_seed(0)
    loss = KDLoss(tau=dict(type='CurriculumTemperature', mode='instance', num_classes=5))
    with torch.no_grad():
        loss.temperature.mlp[2].weight.normal_()
    student, teacher = torch.randn(4, 5), torch.randn(4, 5)
    value = loss(student, teacher)
    taus = loss.temperature(student, teacher).detach()
    rows = [kd_loss(student[i:i + 1], teacher[i:i + 1], float(taus[i])) for i in range(4)]
    assert value.item() == pytest.approx(sum(rows).item() / 4, rel=1e-5)


def test_distiller_logs_tau_and_lambda_and_keeps_the_temperature_out_of_the_export(
        teacher_checkpoint, epoch):
    epoch(10)
    ctkd = dict(loss_kd=dict(type='KDLoss', tau=dict(type='CurriculumTemperature')))
    model = build_distiller(teacher_checkpoint, losses=ctkd)
    theta_before = model.distill_losses.loss_kd.temperature.theta.item()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5))
    log_vars = model.train_step(make_batch(), optim_wrapper)
    assert float(log_vars['lambda_kd']) == 1.0 and float(log_vars['tau_kd']) == pytest.approx(4.0)
    assert float(log_vars['loss']) == pytest.approx(
        float(log_vars['student.loss']) + float(log_vars['distill.loss_kd']), rel=1e-5)
    state = model.state_dict()
    assert state['distill_losses.loss_kd.temperature.theta'].item() != theta_before
    assert not any('temperature' in key for key in extract_student_state_dict(state))
