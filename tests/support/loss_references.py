"""One reference per distillation formula, written from the papers' definitions in float64 (NumPy)
or with 50-digit arithmetic (mpmath, exact where logits saturate), never by calling the code under
test. Values are returned as floats; where a test also checks the gradient with respect to the
student's logits, the reference returns ``(value, gradient)``.

Conventions and their sources:

- KD (Hinton et al., 2015): ``tau² · mean_i Σ_c p_t (log p_t - log p_s)`` of the
  temperature-softened softmax; for dense heads the Bernoulli KL of each independent sigmoid,
  summed over the classes of a row and averaged over the rows.
- DIST (Huang et al., NeurIPS 2022; the authors' classification code and their MasKD detection
  code): ``pearson(a, b) = <a - mean a, b - mean b> / (‖a - mean a‖·‖b - mean b‖ + eps)``,
  eps = 1e-8 added to the denominator (not a lower bound on it); inter over rows, intra over
  columns; ``tau²`` in front; softmax for classifiers, an independent sigmoid for dense heads.
- DKD (Zhao et al., CVPR 2022; the authors' mdistiller code): TCKD is the KL of the binary
  (target, rest) distributions, NCKD the KL of the distributions renormalised over the non-target
  classes, each summed per sample, averaged over the batch, times ``tau²``; the warm-up factor
  ``min(e / E, 1)`` counts epochs e from 1.
- CTKD (Li et al., AAAI 2023; the authors' training script): λ = λ_max (1 - cos(π e / E)) / 2 for
  the epoch e counted from 1, capped at e = E.
- Hard distillation (Touvron et al., ICML 2021, DeiT §5): cross-entropy of the distillation
  logits against ``y_t = argmax_c Z_t(c)``, averaged over the batch.
"""
import math
from typing import List, Sequence, Tuple

import mpmath
import numpy as np
import torch

mpmath.mp.dps = 50
EPS = 1e-8  # DIST's eps, added to the Pearson denominator


def as_float64(logits) -> np.ndarray:
    """A tensor (any dtype) or array-like as a float64 NumPy array."""
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().cpu().double().numpy()
    return np.asarray(logits, dtype=np.float64)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (N, C) logits."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits."""
    return np.exp(log_softmax(z))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Element-wise logistic function."""
    return 1 / (1 + np.exp(-z))


def reference_kd(student, teacher, tau: float) -> float:
    """KD of (N, C) logits: ``tau² · mean_i KL(softmax(z_t / tau) ‖ softmax(z_s / tau))``."""
    log_p_s = log_softmax(as_float64(student) / tau)
    log_p_t = log_softmax(as_float64(teacher) / tau)
    return float(tau**2 * (np.exp(log_p_t) * (log_p_t - log_p_s)).sum(axis=1).mean())


def reference_binary_kd(student, teacher, tau: float) -> float:
    """Sigmoid KD of (N, C) logits: ``tau² · mean_i Σ_c`` of the Bernoulli KL of the teacher's from
    the student's softened probability."""
    p = sigmoid(as_float64(teacher) / tau)
    q = sigmoid(as_float64(student) / tau)
    kl = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    return float(tau**2 * kl.sum(axis=1).mean())


def pearson_and_gradient(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Row-wise Pearson correlation of (N, C) arrays with the eps added to the denominator, (N,),
    and d pearson / d a, (N, C).

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


def reference_dist(student, teacher, beta: float, gamma: float, tau: float,
                   activation: str = 'softmax') -> Tuple[float, np.ndarray]:
    """DIST of (N, C) logits and d loss / d z_s, (N, C)."""
    z_s, z_t = as_float64(student), as_float64(teacher)
    if activation == 'softmax':
        y_s, y_t = softmax(z_s / tau), softmax(z_t / tau)
    else:
        y_s, y_t = sigmoid(z_s / tau), sigmoid(z_t / tau)
    rows, d_rows = pearson_and_gradient(y_s, y_t)
    columns, d_columns = pearson_and_gradient(y_s.T, y_t.T)
    value = tau**2 * (beta * (1 - rows.mean()) + gamma * (1 - columns.mean()))
    d_y = -tau**2 * (beta * d_rows / len(rows) + gamma * d_columns.T / len(columns))
    if activation == 'softmax':  # softmax Jacobian: y ⊙ (g - <g, y>)
        d_z = y_s * (d_y - (d_y * y_s).sum(axis=1, keepdims=True)) / tau
    else:
        d_z = d_y * y_s * (1 - y_s) / tau
    return float(value), d_z


def mp_log_softmax(row: Sequence) -> List:
    """Log-softmax of one row in 50-digit arithmetic."""
    top = max(row)
    total = mpmath.fsum(mpmath.exp(v - top) for v in row)
    return [v - top - mpmath.log(total) for v in row]


def reference_dkd(student, teacher, labels, alpha: float, beta: float,
                  tau: float) -> Tuple[float, np.ndarray]:
    """DKD of (N, C) logits with (N,) target classes, and d loss / d z_s, with 50-digit
    arithmetic (exact in saturation).

    With p = softmax(z_s / tau), b_t = the teacher's (target, rest) probabilities and p̂, q̂ the
    non-target distributions of teacher and student:
    d TCKD / d (z_j / tau) = p_y - b_t,y for j = y, p_j (1 - b_t,rest / (1 - p_y)) otherwise;
    d NCKD / d (z_j / tau) = q̂_j - p̂_j for j ≠ y, 0 for j = y.
    """
    z_s, z_t = as_float64(student).tolist(), as_float64(teacher).tolist()
    labels = [int(label) for label in labels]
    n, classes = len(labels), len(z_s[0])
    total = mpmath.mpf(0)
    gradient = [[0.0] * classes for _ in range(n)]
    for i in range(n):
        y = labels[i]
        log_p = mp_log_softmax([mpmath.mpf(v) / tau for v in z_s[i]])
        log_t = mp_log_softmax([mpmath.mpf(v) / tau for v in z_t[i]])
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


def reference_hard_distillation(student, teacher) -> Tuple[float, np.ndarray]:
    """Hard distillation of (N, C) logits and its gradient, in 50-digit arithmetic:
    mean_i -log softmax(z_s,i)[argmax z_t,i]; d/dz_s,i = (softmax(z_s,i) - onehot(argmax
    z_t,i)) / N."""
    z_s, z_t = as_float64(student), as_float64(teacher)
    rows = len(z_s)
    value, gradient = mpmath.mpf(0), np.zeros_like(z_s)
    for i in range(rows):
        log_q = mp_log_softmax([mpmath.mpf(float(v)) for v in z_s[i]])
        label = int(np.argmax(z_t[i]))
        value -= log_q[label] / rows
        gradient[i] = [float(mpmath.exp(v)) / rows for v in log_q]
        gradient[i, label] -= 1.0 / rows
    return float(value), gradient


def authors_lambda(epoch_from_one: int, lambda_max: float, loops: int) -> float:
    """CTKD's cosine schedule of the reversal strength, capped at ``loops``, for an epoch counted
    from 1."""
    i = min(epoch_from_one, loops)
    return lambda_max * (1 - math.cos(i * math.pi / loops)) / 2
