"""DIST: distillation by inter- and intra-class Pearson correlation (Huang et al., 2022)."""

from typing import Optional, Union, cast

import torch
from torch import nn

from mmkd_plugins.registry import MODELS
from .cross_process import gather_rows, scale_gradient_by_world_size
from .curriculum_temperature import build_temperature
from .probabilities import (as_target, at_least_float32, check_softening, probabilities,
                            row_weights_by_confidence, weighted_mean)


def pearson_rows(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Row-wise Pearson correlation, the cosine similarity of the centred rows.

    ``pearson(u, v) = <u - mean(u), v - mean(v)> / (‖u - mean(u)‖ · ‖v - mean(v)‖ + eps)``:
    the authors' convention (DIST's classification code and their MasKD detection code, also
    MMRazor's), eps added to the denominator. It keeps value and gradient finite when a row is
    constant, and it matters where the norms are small: the columns of a batch of 8 over 1000
    classes have norms of about 1e-4 each, so their product is of the order of eps.

    Args:
        a: Shape (N, D).
        b: Shape (N, D).
        eps: Added to the product of the norms. Defaults to 1e-8, the authors' value.

    Returns:
        Shape (N,), values in [-1, 1].
    """
    a_centred = a - a.mean(dim=1, keepdim=True)
    b_centred = b - b.mean(dim=1, keepdim=True)
    covariance = (a_centred * b_centred).sum(dim=1)
    norms = a_centred.norm(dim=1) * b_centred.norm(dim=1)
    return covariance / (norms + eps)


def pearson_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over rows of ``1 - pearson(a[i], b[i])``; a scalar in [0, 2]. Shapes (N, D)."""
    return (1 - pearson_rows(a, b, eps)).mean()


def dist_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float,
              gamma: float, tau: Union[float, torch.Tensor], activation: str = 'softmax',
              row_weights: Optional[torch.Tensor] = None,
              detach_target: bool = True) -> torch.Tensor:
    """DIST loss ``tau² · (beta · L_inter + gamma · L_intra)``.

    With ``Y = activation(z / tau)`` (softmax over classes, or an independent sigmoid per class
    for detectors' sigmoid scores), ``L_inter`` is the mean over the N rows (samples, or
    positions of a dense head) of ``1 - pearson(Y_s[i, :], Y_t[i, :])`` and ``L_intra`` the mean
    over the C columns of ``1 - pearson(Y_s[:, j], Y_t[:, j])`` (each class across the rows).
    Computed in fp32 (float64 inputs stay float64).

    Args:
        student_logits: Student logits, shape (N, C).
        teacher_logits: Teacher logits, shape (N, C); the target.
        beta: Weight of the inter-class (per-row) term.
        gamma: Weight of the intra-class (per-column) term.
        tau: Softening temperature, > 0 (a number or a scalar tensor).
        activation: ``'softmax'`` or ``'sigmoid'``.
        row_weights: Optional weights of the rows in the inter-class mean, shape (N,).
        detach_target: Treat the target as a constant (no gradient to it). Defaults to True.

    Returns:
        Scalar tensor.
    """
    y_student = probabilities(at_least_float32(student_logits) / tau, activation)
    y_teacher = probabilities(at_least_float32(as_target(teacher_logits, detach_target)) / tau,
                              activation)
    inter = weighted_mean(1 - pearson_rows(y_student, y_teacher), row_weights)
    intra = pearson_distance(y_student.t(), y_teacher.t())
    return tau**2 * (beta * inter + gamma * intra)


@MODELS.register_module()
class DISTLoss(nn.Module):
    """DIST as a module: ``loss_weight · dist_loss(z_s, z_t, beta, gamma, tau)``.

    The intra-class term correlates each class across a batch. By default (as in the paper's
    and MMRazor's code) that is the batch of one process; with ``sync_batch=True`` the
    probabilities of every process are gathered first (like SyncBN), so that P processes with
    batch b each compute the same loss, and after DDP's averaging get the same gradient, as one
    process with batch P·b. Gradients reach each process's own samples only.

    Args:
        beta: Weight of the inter-class term. Defaults to 1.0.
        gamma: Weight of the intra-class term. Defaults to 1.0.
        tau: Softening temperature, or a learnable global one as a config,
            ``dict(type='CurriculumTemperature')`` (CTKD). Defaults to 1.0.
        loss_weight: Multiplier of the loss. Defaults to 1.0.
        sync_batch: Compute the loss over the batches of all processes. Defaults to False.
        activation: ``'softmax'`` (classifiers, two-stage RoI heads) or ``'sigmoid'`` (dense
            detection heads, whose class scores are independent sigmoids). Defaults to
            ``'softmax'``.
        weight_by_teacher_confidence: Weight each row of the inter-class term by the teacher's
            highest probability in it, so that the many background positions of a dense head
            do not dominate. Defaults to False.
        anchors_per_position: Split each row of a dense head (A anchors x K classes, anchor
            major, as mmdet lays them out) into A rows of K classes first; with
            ``activation='softmax'`` this is the softmax-over-classes-per-anchor variant.
            Defaults to 1 (rows as given).
    """

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, tau: Union[float, dict] = 1.0,
                 loss_weight: float = 1.0, sync_batch: bool = False,
                 activation: str = 'softmax', weight_by_teacher_confidence: bool = False,
                 anchors_per_position: int = 1) -> None:
        super().__init__()
        check_softening('DISTLoss', tau, activation)
        self.beta = beta
        self.gamma = gamma
        self.tau = tau
        self.temperature = build_temperature(tau, 'DISTLoss', instance_allowed=False)
        self.loss_weight = loss_weight
        self.sync_batch = sync_batch
        self.activation = activation
        self.weight_by_teacher_confidence = weight_by_teacher_confidence
        self.anchors_per_position = anchors_per_position

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                detach_target: bool = True) -> torch.Tensor:
        """DIST between two sets of rows.

        Args:
            student_logits: Shape (N, C) (C = A·K for a dense head's row of A anchors).
            teacher_logits: Shape (N, C); the target.
            detach_target: No gradient to the target. Defaults to True.

        Returns:
            Scalar tensor.

        Raises:
            ValueError: ``anchors_per_position`` does not divide C.
        """
        if self.anchors_per_position > 1:
            student_logits = self._rows_per_anchor(student_logits)
            teacher_logits = self._rows_per_anchor(teacher_logits)
        if self.sync_batch:
            student_logits = gather_rows(at_least_float32(student_logits))
            teacher_logits = gather_rows(at_least_float32(teacher_logits))
        tau = (cast(float, self.tau) if self.temperature is None else  # tau not a config
               self.temperature(student_logits, teacher_logits))
        row_weights = None
        if self.weight_by_teacher_confidence:
            row_weights = row_weights_by_confidence(teacher_logits, tau, self.activation)
        loss = dist_loss(student_logits, teacher_logits, self.beta, self.gamma, tau,
                         self.activation, row_weights, detach_target)
        if self.sync_batch:
            loss = scale_gradient_by_world_size(loss)
        return self.loss_weight * loss

    def _rows_per_anchor(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, A·K) -> (N·A, K), anchor major as mmdet lays the channels out."""
        channels = logits.shape[1]
        if channels % self.anchors_per_position:
            raise ValueError(f'DISTLoss(anchors_per_position={self.anchors_per_position}): '
                             f'the rows have {channels} channels, not a multiple of '
                             f'{self.anchors_per_position} anchors')
        return logits.reshape(-1, channels // self.anchors_per_position)
