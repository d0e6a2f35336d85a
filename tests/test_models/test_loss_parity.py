"""The losses against their authors' published definitions and conventions, in value AND gradient.

References are written here from the formulas, in float64 (NumPy) or with 50-digit arithmetic
(mpmath, for saturated logits), never by calling the code under test. Conventions and their
sources:

- DIST (Huang et al., NeurIPS 2022; the authors' classification code and their MasKD detection
  code): ``pearson(a, b) = <a - mean a, b - mean b> / (‖a - mean a‖·‖b - mean b‖ + eps)``,
  eps = 1e-8 added to the denominator (not a lower bound on it); inter over rows, intra over
  columns; ``tau²`` in front; softmax for classifiers, an independent sigmoid for dense heads.
- DKD (Zhao et al., CVPR 2022; the authors' mdistiller code): TCKD is the KL of the binary
  (target, rest) distributions, NCKD the KL of the distributions renormalised over the non-target
  classes, each summed per sample, averaged over the batch, times ``tau²``; the warm-up factor
  ``min(e / E, 1)`` counts epochs e from 1.
- CTKD (Li et al., AAAI 2023; the authors' training script): λ = λ_max (1 - cos(π e / E)) / 2
  for the epoch e counted from 1, capped at e = E; the global temperature is
  ``1 + 20 · sigmoid(θ)``, with θ = 1 at the start in the authors' code.
- Hard distillation (Touvron et al., ICML 2021, DeiT §5): cross-entropy of the distillation
  logits against ``y_t = argmax_c Z_t(c)``, averaged over the batch; DeiT's ½ is a weight.
"""
import math

import mpmath
import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

from mmkd_plugins.models.losses import (CurriculumTemperature, DISTLoss, DKDLoss,
                                        HardDistillationLoss, dist_loss, dkd_loss)

mpmath.mp.dps = 50
EPS = 1e-8  # the authors' eps, added to the denominator


# ---------------------------------------------------------------- DIST, from the formula


def _softmax(z):
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _pearson_and_gradient(a, b):
    """Row-wise Pearson with the eps added to the denominator, and d pearson / d a.

    For centred rows ã, b̃ with c = <ã, b̃>, D = ‖ã‖‖b̃‖ + eps:
    d pearson / d a = b̃ / D - c ‖b̃‖ ã / (‖ã‖ D²) (the centring is a projection that leaves
    centred vectors unchanged).
    """
    a_c = a - a.mean(axis=1, keepdims=True)
    b_c = b - b.mean(axis=1, keepdims=True)
    norm_a = np.linalg.norm(a_c, axis=1, keepdims=True)
    norm_b = np.linalg.norm(b_c, axis=1, keepdims=True)
    covariance = (a_c * b_c).sum(axis=1, keepdims=True)
    denominator = norm_a * norm_b + EPS
    pearson = covariance / denominator
    safe_norm_a = np.where(norm_a > 0, norm_a, 1.0)
    gradient = b_c / denominator - covariance * norm_b * a_c / (safe_norm_a * denominator**2)
    return pearson[:, 0], gradient


def reference_dist(z_s, z_t, beta, gamma, tau, activation):
    """DIST value and d loss / d z_s, float64."""
    if activation == 'softmax':
        y_s, y_t = _softmax(z_s / tau), _softmax(z_t / tau)
    else:
        y_s, y_t = _sigmoid(z_s / tau), _sigmoid(z_t / tau)
    rows, d_rows = _pearson_and_gradient(y_s, y_t)
    columns, d_columns = _pearson_and_gradient(y_s.T, y_t.T)
    value = tau**2 * (beta * (1 - rows.mean()) + gamma * (1 - columns.mean()))
    d_y = -tau**2 * (beta * d_rows / len(rows) + gamma * d_columns.T / len(columns))
    if activation == 'softmax':  # softmax Jacobian: y ⊙ (g - <g, y>)
        d_z = y_s * (d_y - (d_y * y_s).sum(axis=1, keepdims=True)) / tau
    else:
        d_z = d_y * y_s * (1 - y_s) / tau
    return value, d_z


def _loss_and_gradient(function, student, *args):
    student = torch.tensor(student, dtype=torch.float64, requires_grad=True)
    value = function(student, *args)
    (gradient, ) = torch.autograd.grad(value, student)
    return value.item(), gradient.numpy()


def assert_close_to_reference(value, gradient, expected_value, expected_gradient, rel=1e-5):
    assert value == pytest.approx(expected_value, rel=rel)
    scale = np.abs(expected_gradient).max()
    np.testing.assert_allclose(gradient, expected_gradient, rtol=rel, atol=rel * scale)


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


def _mp_log_softmax(row):
    top = max(row)
    total = mpmath.fsum(mpmath.exp(v - top) for v in row)
    return [v - top - mpmath.log(total) for v in row]


def reference_dkd(z_s, z_t, labels, alpha, beta, tau):
    """DKD value and d loss / d z_s with 50-digit arithmetic (exact in saturation).

    With p = softmax(z_s / tau), b_t = the teacher's (target, rest) probabilities and p̂, q̂ the
    non-target distributions of teacher and student:
    d TCKD / d (z_j / tau) = p_y - b_t,y for j = y, p_j (1 - b_t,rest / (1 - p_y)) otherwise;
    d NCKD / d (z_j / tau) = q̂_j - p̂_j for j ≠ y, 0 for j = y.
    """
    n, classes = len(labels), len(z_s[0])
    total = mpmath.mpf(0)
    gradient = [[0.0] * classes for _ in range(n)]
    for i in range(n):
        y = labels[i]
        log_p = _mp_log_softmax([mpmath.mpf(v) / tau for v in z_s[i]])
        log_t = _mp_log_softmax([mpmath.mpf(v) / tau for v in z_t[i]])
        p, t = [mpmath.exp(v) for v in log_p], [mpmath.exp(v) for v in log_t]
        rest_s, rest_t = mpmath.fsum(p[:y] + p[y + 1:]), mpmath.fsum(t[:y] + t[y + 1:])
        tckd = (t[y] * (log_t[y] - log_p[y])
                + rest_t * (mpmath.log(rest_t) - mpmath.log(rest_s)))
        others = [j for j in range(classes) if j != y]
        nckd = mpmath.fsum(t[j] / rest_t * (mpmath.log(t[j] / rest_t) - mpmath.log(p[j] / rest_s))
                           for j in others)
        total += alpha * tckd + beta * nckd
        for j in range(classes):
            if j == y:
                d_tckd, d_nckd = p[y] - t[y], 0
            else:
                d_tckd = p[j] * (1 - rest_t / rest_s)
                d_nckd = p[j] / rest_s - t[j] / rest_t
            gradient[i][j] = float(tau * (alpha * d_tckd + beta * d_nckd) / n)
    return float(tau**2 * total / n), np.array(gradient)


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


def authors_lambda(epoch_from_one, lambda_max, loops):
    """The authors' cosine schedule, capped at ``loops``, for an epoch counted from 1."""
    i = min(epoch_from_one, loops)
    return lambda_max * (1 - math.cos(i * math.pi / loops)) / 2


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


def reference_hard_distillation(z_s, z_t):
    """Value and gradient in 50-digit arithmetic: mean_i -log softmax(z_s,i)[argmax z_t,i];
    d/dz_s,i = (softmax(z_s,i) - onehot(argmax z_t,i)) / N."""
    rows = len(z_s)
    value, gradient = mpmath.mpf(0), np.zeros_like(z_s)
    for i in range(rows):
        log_q = _mp_log_softmax([mpmath.mpf(float(v)) for v in z_s[i]])
        label = int(np.argmax(z_t[i]))
        value -= log_q[label] / rows
        gradient[i] = [float(mpmath.exp(v)) / rows for v in log_q]
        gradient[i, label] -= 1.0 / rows
    return float(value), gradient


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
