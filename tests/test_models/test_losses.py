"""KDLoss, DISTLoss and DKDLoss against the references of :mod:`tests.support.loss_references`;
their module forms, batch conventions and input checks."""

import pytest
import torch

from mmkd_plugins.models.losses import DISTLoss, DKDLoss, KDLoss, dist_loss, dkd_loss, kd_loss
from ..support.loss_references import reference_dist, reference_dkd, reference_kd


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_kd_loss_matches_batch_mean_kl_times_tau_squared(tau):
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 5) * 3, torch.randn(6, 5) * 3
    expected = reference_kd(student, teacher, tau)
    assert kd_loss(student, teacher, tau).item() == pytest.approx(expected, rel=1e-5)
    module = KDLoss(tau=tau, loss_weight=0.5)
    assert module(student, teacher).item() == pytest.approx(0.5 * expected, rel=1e-5)


def test_kd_loss_is_not_averaged_over_classes():
    """A mean over all B*C elements would be C times smaller (mmdet's KLDiv pitfall)."""
    student, teacher = torch.zeros(2, 100), torch.zeros(2, 100)
    teacher[:, 0] = 10.0
    per_sample = reference_kd(student, teacher, 1.0)
    assert kd_loss(student, teacher, 1.0).item() == pytest.approx(per_sample, rel=1e-5)
    assert per_sample > 1.0


def test_kd_loss_is_zero_for_identical_logits_and_teacher_gets_no_gradient():
    logits = torch.randn(4, 7)
    teacher = logits.clone().requires_grad_(True)
    student = logits.clone().requires_grad_(True)
    loss = kd_loss(student, teacher, 2.0)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert teacher.grad is None


@pytest.mark.parametrize('beta,gamma,tau', [(1.0, 1.0, 1.0), (2.0, 0.5, 4.0)])
def test_dist_loss_matches_the_row_and_column_pearson_reference(beta, gamma, tau):
    torch.manual_seed(1)
    student, teacher = torch.randn(8, 6) * 2, torch.randn(8, 6) * 2
    expected, _ = reference_dist(student, teacher, beta, gamma, tau)
    assert dist_loss(student, teacher, beta, gamma, tau).item() == pytest.approx(expected,
                                                                                 rel=1e-4)
    module = DISTLoss(beta=beta, gamma=gamma, tau=tau, loss_weight=2.0)
    assert module(student, teacher).item() == pytest.approx(2 * expected, rel=1e-4)


def test_dist_loss_is_invariant_to_positive_affine_maps_of_probabilities():
    """Pearson ignores scale and shift: a student whose probabilities are a positive affine map of
    the teacher's has (near) zero inter-class loss."""
    teacher = torch.randn(4, 5)
    y_t = teacher.softmax(1)
    y_s = 0.5 * y_t + 0.1 / 5 * 2
    student = y_s.log()  # softmax(log y_s) = y_s / sum(y_s); still affine in y_t per row
    inter_only = dist_loss(student, teacher, beta=1.0, gamma=0.0, tau=1.0)
    assert inter_only.item() == pytest.approx(0.0, abs=1e-5)


def test_dist_loss_value_and_gradient_finite_for_constant_rows_and_columns():
    student = torch.zeros(3, 4, requires_grad=True)  # every row and column constant
    teacher = torch.randn(3, 4)
    loss = dist_loss(student, teacher, 1.0, 1.0, 1.0)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(student.grad).all()
    single = torch.randn(1, 4, requires_grad=True)  # batch of one: constant columns
    loss = dist_loss(single, torch.randn(1, 4), 1.0, 1.0, 1.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(single.grad).all()


def test_losses_compute_in_fp32_for_half_inputs():
    student, teacher = torch.randn(4, 5).half(), torch.randn(4, 5).half()
    assert kd_loss(student, teacher, 2.0).dtype == torch.float32
    assert dist_loss(student, teacher, 1.0, 1.0, 1.0).dtype == torch.float32
    expected, _ = reference_dist(student, teacher, 1.0, 1.0, 1.0)
    assert dist_loss(student, teacher, 1.0, 1.0, 1.0).item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize('loss_cls', [KDLoss, DISTLoss])
def test_losses_reject_non_positive_temperature(loss_cls):
    with pytest.raises(ValueError, match='tau must be > 0'):
        loss_cls(tau=0.0)


@pytest.mark.parametrize('loss_cls', [KDLoss, DISTLoss])
def test_losses_reject_unknown_activation(loss_cls):
    with pytest.raises(ValueError, match=rf"{loss_cls.__name__}: activation must be one of "
                       r"\('softmax', 'sigmoid'\), got 'relu'"):
        loss_cls(activation='relu')


@pytest.mark.parametrize('loss', [KDLoss(), KDLoss(activation='sigmoid'), DISTLoss(),
                                  DISTLoss(activation='sigmoid')],
                         ids=['kd', 'binary_kd', 'dist', 'sigmoid_dist'])
def test_the_target_gets_gradient_only_when_not_detached(loss):
    torch.manual_seed(0)
    student = torch.randn(6, 5, requires_grad=True)
    target = torch.randn(6, 5, requires_grad=True)
    assert torch.autograd.grad(loss(student, target), target, allow_unused=True)[0] is None
    (grad, ) = torch.autograd.grad(loss(student, target, detach_target=False), target)
    assert grad.abs().sum() > 0
    # The value is the same either way.
    assert loss(student, target).item() == pytest.approx(
        loss(student, target, detach_target=False).item())


@pytest.mark.parametrize('alpha,beta,tau', [(1.0, 8.0, 4.0), (1.0, 0.5, 1.0)])
def test_dkd_loss_matches_the_per_sample_definition(alpha, beta, tau):
    torch.manual_seed(3)
    student, teacher = torch.randn(5, 6) * 2, torch.randn(5, 6) * 2
    labels = torch.tensor([0, 3, 5, 1, 3])
    expected, _ = reference_dkd(student, teacher, labels, alpha, beta, tau)
    assert dkd_loss(student, teacher, labels, alpha, beta, tau).item() == pytest.approx(
        expected, rel=1e-5)


def test_dkd_loss_is_a_batch_mean_and_zero_for_identical_logits():
    """MMRazor's DKD sums over the batch; a batch mean does not change when it is repeated."""
    torch.manual_seed(4)
    student, teacher = torch.randn(4, 5), torch.randn(4, 5)
    labels = torch.tensor([1, 0, 4, 2])
    once = dkd_loss(student, teacher, labels, 1.0, 8.0, 4.0)
    twice = dkd_loss(student.repeat(2, 1), teacher.repeat(2, 1), labels.repeat(2), 1.0, 8.0, 4.0)
    assert twice.item() == pytest.approx(once.item(), rel=1e-6)
    assert dkd_loss(teacher, teacher, labels, 1.0, 8.0, 4.0).item() == pytest.approx(0, abs=1e-6)


def test_dkd_weight_warms_up_over_epochs():
    from mmengine.logging import MessageHub
    loss = DKDLoss(warmup_epochs=20)
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', 4)
    assert loss.warmup_factor() == pytest.approx(5 / 20)
    hub.update_info('epoch', 30)
    assert loss.warmup_factor() == 1.0
    hub.update_info('epoch', 0)
