"""The losses against their authors' published definitions and conventions, in value AND gradient.

The references and the conventions they follow, with their sources, are in
:mod:`tests.support.loss_references` (float64, or 50-digit arithmetic for saturated logits).
"""

import math

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

from mmkd_plugins.models.losses import (CurriculumTemperature, DISTLoss, DKDLoss,
                                        HardDistillationLoss, dist_loss, dkd_loss)
from ..support.loss_references import (authors_lambda, reference_dist, reference_dkd,
                                       reference_hard_distillation)


def _loss_and_gradient(function, student, *args):
    student = torch.tensor(student, dtype=torch.float64, requires_grad=True)
    value = function(student, *args)
    (gradient, ) = torch.autograd.grad(value, student)
    return value.item(), gradient.numpy()


def assert_close_to_reference(value, gradient, expected_value, expected_gradient, rel=1e-5):
    assert value == pytest.approx(expected_value, rel=rel)
    scale = np.abs(expected_gradient).max()
    np.testing.assert_allclose(gradient, expected_gradient, rtol=rel, atol=rel * scale)


# ---------------------------------------------------------------- DIST, from the formula


@pytest.mark.parametrize('batch,classes,scale', [(8, 10, 3.0), (8, 100, 3.0), (8, 1000, 1.0),
                                                 (64, 100, 3.0)])
def test_dist_softmax_matches_the_authors_formula_in_value_and_gradient(batch, classes, scale):
    """At batch 8 with 1000 classes the columns' norms are ~1e-4 each, so their product is of
    the order of eps: there ``+ eps`` and ``max(·, eps)`` differ (by several percent)."""
    rng = np.random.default_rng(batch * classes)
    z_s, z_t = rng.normal(size=(batch, classes)) * scale, rng.normal(size=(batch, classes)) * scale
    expected = reference_dist(z_s, z_t, 1.0, 1.0, 1.0, 'softmax')
    value, gradient = _loss_and_gradient(
        lambda s: dist_loss(s, torch.from_numpy(z_t), 1.0, 1.0, 1.0), z_s)
    assert_close_to_reference(value, gradient, *expected)


@pytest.mark.parametrize('beta,gamma,tau', [(1.0, 1.0, 1.0), (2.0, 0.5, 4.0)])
def test_dist_sigmoid_rows_of_a_dense_head_match_the_authors_formula(beta, gamma, tau):
    """The MasKD detection recipe: one row of A·K sigmoid scores per position, mostly background
    (logits around -6), where the small column variances make eps matter."""
    rng = np.random.default_rng(7)
    z_s = rng.normal(size=(8, 720)) - 6.0
    z_t = rng.normal(size=(8, 720)) - 6.0
    expected = reference_dist(z_s, z_t, beta, gamma, tau, 'sigmoid')
    value, gradient = _loss_and_gradient(
        lambda s: dist_loss(s, torch.from_numpy(z_t), beta, gamma, tau, 'sigmoid'), z_s)
    assert_close_to_reference(value, gradient, *expected)


def test_dist_of_saturated_logits_matches_the_formula():
    rng = np.random.default_rng(3)
    z_s = rng.normal(size=(8, 10))
    z_s[np.arange(8), rng.integers(0, 10, 8)] += rng.uniform(50, 200, 8)
    z_t = rng.normal(size=(8, 10)) * 4
    expected = reference_dist(z_s, z_t, 1.0, 1.0, 1.0, 'softmax')
    value, gradient = _loss_and_gradient(
        lambda s: dist_loss(s, torch.from_numpy(z_t), 1.0, 1.0, 1.0), z_s)
    assert_close_to_reference(value, gradient, *expected)


def test_dist_rejects_channels_not_divisible_by_the_anchors():
    loss = DISTLoss(activation='sigmoid', anchors_per_position=9)
    with pytest.raises(ValueError, match=r'DISTLoss\(anchors_per_position=9\).*721'):
        loss(torch.randn(4, 721), torch.randn(4, 721))


# ---------------------------------------------------------------- DKD, from the formula


def _dkd_case(rng, batch, classes, margin):
    z_s, z_t = rng.normal(size=(batch, classes)) * 2, rng.normal(size=(batch, classes)) * 2
    labels = rng.integers(0, classes, batch)
    if margin:  # a confidently wrong student: another class ahead of the target by `margin`
        wrong = (labels + 1) % classes
        z_s[np.arange(batch), wrong] += margin
    return z_s, z_t, labels


@pytest.mark.parametrize('alpha,beta,tau', [(1.0, 8.0, 4.0), (1.0, 0.5, 1.0)])
@pytest.mark.parametrize('batch,classes,margin', [(8, 10, 0.0), (8, 100, 0.0), (8, 10, 50.0),
                                                  (8, 100, 120.0), (8, 10, 200.0)])
def test_dkd_matches_the_definition_in_value_and_gradient(alpha, beta, tau, batch, classes,
                                                          margin):
    rng = np.random.default_rng(int(margin) + classes)
    z_s, z_t, labels = _dkd_case(rng, batch, classes, margin)
    expected = reference_dkd(z_s.tolist(), z_t.tolist(), labels.tolist(), alpha, beta, tau)
    value, gradient = _loss_and_gradient(
        lambda s: dkd_loss(s, torch.from_numpy(z_t), torch.from_numpy(labels), alpha, beta, tau),
        z_s)
    assert_close_to_reference(value, gradient, *expected)


def test_a_confidently_wrong_student_keeps_its_target_class_gradient():
    """Student target probability far below 1e-12: TCKD still pulls the target logit up by about the
    teacher's target probability (clamping probabilities before the log cut it)."""
    z_s = np.zeros((1, 5))
    z_s[0, 1] = 60.0  # class 1 ahead of the target class 0 by 60 at tau 1
    z_t = np.array([[1.0, 0.5, 0.0, -0.5, 0.2]])
    value, gradient = _loss_and_gradient(
        lambda s: dkd_loss(s, torch.from_numpy(z_t), torch.tensor([0]), 1.0, 0.0, 1.0), z_s)
    teacher_target = float(torch.softmax(torch.from_numpy(z_t), 1)[0, 0])
    assert gradient[0, 0] == pytest.approx(-teacher_target, rel=1e-6)
    expected_value, _ = reference_dkd(z_s.tolist(), z_t.tolist(), [0], 1.0, 0.0, 1.0)
    assert value == pytest.approx(expected_value, rel=1e-6)  # the true KL, not a clamped one


def test_dkd_warm_up_counts_epochs_from_one():
    """The mdistiller warm-up factor: min(epoch / warmup, 1) with epochs from 1; mmengine's epoch is
    0-based."""
    hub = MessageHub.get_current_instance()
    loss = DKDLoss(warmup_epochs=1)
    hub.update_info('epoch', 0)
    assert loss.warmup_factor() == 1.0  # ImageNet setting: full weight from the first epoch


# ---------------------------------------------------------------- CTKD, from the formula


@pytest.mark.parametrize('loops', [5, 10])
def test_ctkd_lambda_matches_the_authors_schedule_at_every_epoch(loops):
    hub = MessageHub.get_current_instance()
    temperature = CurriculumTemperature(lambda_max=1.0, warmup_epochs=loops)
    try:
        for runner_epoch in range(3 * loops):  # mmengine's epoch, 0-based
            hub.update_info('epoch', runner_epoch)
            assert temperature.current_lambda() == pytest.approx(
                authors_lambda(runner_epoch + 1, 1.0, loops), abs=1e-12), runner_epoch
    finally:
        hub.update_info('epoch', 0)
    hub.update_info('epoch', 0)
    assert temperature.current_lambda() > 0  # the temperature learns in the first epoch


def test_ctkd_authors_start_is_theta_one():
    from mmkd_plugins.models.losses.curriculum_temperature import AUTHORS_INIT_TAU
    assert AUTHORS_INIT_TAU == pytest.approx(1 + 20 / (1 + math.exp(-1)))
    temperature = CurriculumTemperature(init_tau=AUTHORS_INIT_TAU)
    assert float(temperature.theta) == pytest.approx(1.0, rel=1e-6)


# ---------------------------------------------------------------- hard distillation (DeiT)


@pytest.mark.parametrize('classes,margin', [(10, 0.0), (1000, 0.0), (10, 200.0)])
def test_hard_distillation_matches_deit_in_value_and_gradient(classes, margin):
    rng = np.random.default_rng(classes)
    z_s = rng.normal(0.0, 3.0, size=(8, classes))
    z_t = rng.normal(0.0, 3.0, size=(8, classes))
    if margin:  # a confidently wrong student: its top class is not the teacher's
        z_s[np.arange(8), (np.argmax(z_t, axis=1) + 1) % classes] += margin
    loss = HardDistillationLoss(loss_weight=0.5)
    value, gradient = _loss_and_gradient(
        lambda student: loss(student, torch.tensor(z_t, requires_grad=True)), z_s)
    expected_value, expected_gradient = reference_hard_distillation(z_s, z_t)
    assert math.isfinite(value)
    assert_close_to_reference(value, gradient, 0.5 * expected_value, 0.5 * expected_gradient)
