"""Classic knowledge distillation loss (Hinton et al., 2015), for softmax or sigmoid scores."""

from typing import Optional, Union, cast

import torch
import torch.nn.functional as F
from torch import nn

from mmkd_plugins.registry import MODELS
from .curriculum_temperature import build_temperature
from .probabilities import (as_target, at_least_float32, check_softening, row_weights_by_confidence,
                            squared_per_row, weighted_mean)

Temperature = Union[float, torch.Tensor]


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: Temperature,
            row_weights: Optional[torch.Tensor] = None,
            detach_target: bool = True) -> torch.Tensor:
    """Batch-mean KL divergence between temperature-softened distributions, times tau².

    ``tau² · (1/N) · Σ_i KL(softmax(z_t,i / tau) ‖ softmax(z_s,i / tau))``: the KL of each row is
    summed over its C classes, then averaged over the N rows (not over N·C elements).
    Computed in fp32 (float64 inputs stay float64).

    Args:
        student_logits: Student logits, shape (N, C).
        teacher_logits: Teacher logits, shape (N, C); the target.
        tau: Softening temperature, > 0: a number, a scalar tensor, or (N, 1) per row.
        row_weights: Optional weights of the rows in the mean, shape (N,).
        detach_target: Treat the target as a constant (no gradient to it). Defaults to True.

    Returns:
        Scalar tensor.
    """
    log_q_student = F.log_softmax(at_least_float32(student_logits) / tau, dim=1)
    log_p_teacher = F.log_softmax(
        at_least_float32(as_target(teacher_logits, detach_target)) / tau, dim=1)
    kl_per_row = F.kl_div(
        log_q_student, log_p_teacher, reduction='none', log_target=True).sum(dim=1)
    return weighted_mean(kl_per_row * squared_per_row(tau), row_weights)


def binary_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   tau: Temperature,
                   row_weights: Optional[torch.Tensor] = None,
                   detach_target: bool = True) -> torch.Tensor:
    """KD for independent per-class sigmoid scores (dense detection heads), times tau².

    Each of the C scores is a Bernoulli variable: with ``p = sigmoid(z_t / tau)`` and
    ``q = sigmoid(z_s / tau)``, ``KL = p log(p/q) + (1-p) log((1-p)/(1-q))``, summed over the C
    classes and averaged over the N rows (positions). Computed in fp32 (float64 inputs stay
    float64).

    Args:
        student_logits: Student logits, shape (N, C).
        teacher_logits: Teacher logits, shape (N, C); the target.
        tau: Softening temperature, > 0: a number, a scalar tensor, or (N, 1) per row.
        row_weights: Optional weights of the rows in the mean, shape (N,).
        detach_target: Treat the target as a constant (no gradient to it). Defaults to True.

    Returns:
        Scalar tensor.
    """
    z_student = at_least_float32(student_logits) / tau
    z_teacher = at_least_float32(as_target(teacher_logits, detach_target)) / tau
    # p log(p/q) + (1-p) log((1-p)/(1-q)) with p = σ(z_t), q = σ(z_s), written with
    # log σ(z) = z - softplus(z) and log(1 - σ(z)) = -softplus(z): one softplus per side.
    kl = (F.softplus(z_student) - F.softplus(z_teacher)
          - z_teacher.sigmoid() * (z_student - z_teacher))
    return weighted_mean(kl.sum(dim=1) * squared_per_row(tau), row_weights)


@MODELS.register_module()
class KDLoss(nn.Module):
    """Hinton's distillation loss as a module: ``loss_weight · kd_loss(z_s, z_t, tau)``.

    Args:
        tau: Softening temperature, or a learnable one as a config, e.g.
            ``dict(type='CurriculumTemperature', mode='global')`` (CTKD). Defaults to 4.0.
        loss_weight: Multiplier of the loss. Defaults to 1.0.
        activation: ``'softmax'`` (:func:`kd_loss`; classifiers, RoI heads) or ``'sigmoid'``
            (:func:`binary_kd_loss`; dense detection heads). Defaults to ``'softmax'``.
        weight_by_teacher_confidence: Weight each row by the teacher's highest probability in
            it, so that background positions do not dominate. Defaults to False.
    """

    def __init__(self, tau: Union[float, dict] = 4.0, loss_weight: float = 1.0,
                 activation: str = 'softmax',
                 weight_by_teacher_confidence: bool = False) -> None:
        super().__init__()
        check_softening('KDLoss', tau, activation)
        self.tau = tau
        self.temperature = build_temperature(tau, 'KDLoss', instance_allowed=True)
        self.loss_weight = loss_weight
        self.activation = activation
        self.weight_by_teacher_confidence = weight_by_teacher_confidence

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                detach_target: bool = True) -> torch.Tensor:
        """KD of a batch.

        Args:
            student_logits: Shape (N, C).
            teacher_logits: Shape (N, C); the target.
            detach_target: No gradient to the target. Defaults to True.

        Returns:
            The loss, a scalar.
        """
        tau = (cast(float, self.tau) if self.temperature is None else  # tau not a config
               self.temperature(student_logits, teacher_logits))
        row_weights = None
        if self.weight_by_teacher_confidence:
            row_weights = row_weights_by_confidence(teacher_logits, tau, self.activation)
        loss_fn = kd_loss if self.activation == 'softmax' else binary_kd_loss
        return self.loss_weight * loss_fn(student_logits, teacher_logits, tau, row_weights,
                                          detach_target)
