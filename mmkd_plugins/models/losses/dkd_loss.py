"""Decoupled knowledge distillation (DKD, Zhao et al., CVPR 2022)."""

from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import nn

from mmkd_plugins.registry import MODELS
from .probabilities import as_target, at_least_float32, check_softening


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
             alpha: float, beta: float, tau: float, detach_target: bool = True) -> torch.Tensor:
    """``tau² · (alpha · TCKD + beta · NCKD)``, each averaged over the N samples.

    TCKD is the KL divergence (teacher ‖ student) of the binary distributions (target class,
    all other classes); NCKD the KL divergence of the distributions over the non-target classes
    alone, renormalised (the authors mask the target logit by subtracting 1000 before the
    softmax; here it is left out exactly). All probabilities are softened by tau. Everything is
    computed in log space: ``log p_target`` from a log-softmax and ``log Σ_{j≠target} p_j`` by a
    logsumexp over the non-target classes, so value and gradient stay exact when a probability
    is far below float precision (a confidently wrong student at tau 1 still gets the
    target-class gradient ``p_target - b_teacher,target``). Computed in fp32 (float64 inputs
    stay float64).

    Args:
        student_logits: Shape (N, C).
        teacher_logits: Shape (N, C); the target.
        labels: Ground-truth classes, shape (N,), int64.
        alpha: Weight of TCKD.
        beta: Weight of NCKD.
        tau: Softening temperature, > 0.
        detach_target: Treat the target as a constant. Defaults to True.

    Returns:
        Scalar tensor (a batch mean, not a sum).
    """
    z_student = at_least_float32(student_logits) / tau
    z_teacher = at_least_float32(as_target(teacher_logits, detach_target)) / tau
    is_target = F.one_hot(labels, z_student.shape[1]).bool()
    tckd = _kl_per_row(_log_target_and_rest(z_student, is_target),
                       _log_target_and_rest(z_teacher, is_target))
    nckd = _kl_per_row(_log_softmax_of_non_targets(z_student, is_target),
                       _log_softmax_of_non_targets(z_teacher, is_target))
    return tau**2 * (alpha * tckd.mean() + beta * nckd.mean())


def _kl_per_row(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) of each row from log-probabilities, shapes (N, D) -> (N,)."""
    return F.kl_div(log_q, log_p, reduction='none', log_target=True).sum(dim=1)


def _log_target_and_rest(logits: torch.Tensor, is_target: torch.Tensor) -> torch.Tensor:
    """(N, C) logits -> (N, 2): log p_target and log Σ_{j≠target} p_j of their softmax."""
    log_probabilities = F.log_softmax(logits, dim=1)
    log_target = log_probabilities.masked_fill(~is_target, float('-inf')).logsumexp(dim=1)
    log_rest = log_probabilities.masked_fill(is_target, float('-inf')).logsumexp(dim=1)
    return torch.stack([log_target, log_rest], dim=1)


def _log_softmax_of_non_targets(logits: torch.Tensor, is_target: torch.Tensor) -> torch.Tensor:
    """(N, C) -> (N, C): log-softmax over the non-target classes; 0 at the target, whose
    probability is then exactly 0 in :func:`_kl_per_row` (terms ``0 · (0 - 0)``)."""
    log_probabilities = F.log_softmax(logits.masked_fill(is_target, float('-inf')), dim=1)
    return log_probabilities.masked_fill(is_target, 0.0)


@MODELS.register_module()
class DKDLoss(nn.Module):
    """DKD as a module: ``loss_weight · warm-up · dkd_loss(z_s, z_t, labels, ...)``.

    It needs the ground-truth labels (``requires_labels``): the distiller passes them for
    classifiers without batch augments. The authors' settings (mdistiller's configs):
    alpha = 1, beta = 8, tau = 4 and a 20-epoch warm-up on CIFAR-100; alpha = 1, beta = 0.5,
    tau = 1 and ``WARMUP: 1`` on ImageNet, which with epochs counted from 1 is full weight from
    the first epoch.

    Args:
        alpha: Weight of the target-class term TCKD. Defaults to 1.0.
        beta: Weight of the non-target-class term NCKD. Defaults to 8.0.
        tau: Softening temperature. Defaults to 4.0.
        loss_weight: Multiplier of the loss. Defaults to 1.0.
        warmup_epochs: The loss weight grows linearly to its value over this many epochs:
            ``min(e / warmup_epochs, 1)`` for the epoch e counted from 1 as in the authors'
            code (mmengine's 0-based epoch + 1, read from the runner's message hub). Epochs
            exist only in an epoch-based loop: :class:`~mmkd_plugins.engine.EpochScheduleCheckHook`
            refuses a warm-up in an iteration-based one. Defaults to 0 (no warm-up).
    """

    requires_labels = True

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, tau: float = 4.0,
                 loss_weight: float = 1.0, warmup_epochs: int = 0) -> None:
        super().__init__()
        check_softening('DKDLoss', tau, 'softmax')
        self.alpha, self.beta, self.tau = alpha, beta, tau
        self.loss_weight = loss_weight
        self.warmup_epochs = warmup_epochs

    @property
    def epoch_schedule(self) -> Optional[str]:
        """What of this loss counts epochs (``'warmup_epochs'``), or None."""
        return 'warmup_epochs' if self.warmup_epochs else None

    def warmup_factor(self) -> float:
        """The warm-up multiplier of the current epoch."""
        if not self.warmup_epochs:
            return 1.0
        epoch = MessageHub.get_current_instance().get_info('epoch', 0)
        return min((epoch + 1) / self.warmup_epochs, 1.0)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: Optional[torch.Tensor] = None,
                detach_target: bool = True) -> torch.Tensor:
        """DKD of a batch.

        Args:
            student_logits: Shape (N, C).
            teacher_logits: Shape (N, C); the target.
            labels: Ground-truth classes, shape (N,).
            detach_target: No gradient to the target. Defaults to True.

        Returns:
            Scalar tensor.
        """
        if labels is None:
            raise ValueError('DKDLoss needs the ground-truth labels (classifiers only)')
        loss = dkd_loss(student_logits, teacher_logits, labels, self.alpha, self.beta, self.tau,
                        detach_target)
        return self.loss_weight * self.warmup_factor() * loss
