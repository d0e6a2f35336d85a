"""Decoupled knowledge distillation (DKD, Zhao et al., CVPR 2022)."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import nn

from mmkd_plugins.registry import MODELS
from .probabilities import as_target, check_softening

MASK_OFFSET = 1000.0  # subtracted from the target logit to leave it out of NCKD's softmax


def dkd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
             alpha: float, beta: float, tau: float, detach_target: bool = True) -> torch.Tensor:
    """``tau² · (alpha · TCKD + beta · NCKD)``, each averaged over the N samples.

    TCKD is the KL divergence (teacher ‖ student) of the binary distributions (target class,
    all other classes); NCKD the KL divergence of the distributions over the non-target classes
    alone (the target logit masked by subtracting 1000 before the softmax). All probabilities
    are softened by tau. Computed in fp32.

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
    z_student = student_logits.float() / tau
    z_teacher = as_target(teacher_logits, detach_target).float() / tau
    is_target = F.one_hot(labels, z_student.shape[1]).bool()
    p_student, p_teacher = z_student.softmax(dim=1), z_teacher.softmax(dim=1)
    binary_student = _target_and_rest(p_student, is_target)
    binary_teacher = _target_and_rest(p_teacher, is_target)
    tckd = (binary_teacher * (binary_teacher.log() - binary_student.log())).sum(dim=1)
    log_q = F.log_softmax(z_student - MASK_OFFSET * is_target, dim=1)
    log_p = F.log_softmax(z_teacher - MASK_OFFSET * is_target, dim=1)
    nckd = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    return tau**2 * (alpha * tckd.mean() + beta * nckd.mean())


def _target_and_rest(probabilities: torch.Tensor, is_target: torch.Tensor) -> torch.Tensor:
    """(N, C) probabilities -> (N, 2): the target class's and the sum of the others'."""
    target = (probabilities * is_target).sum(dim=1)
    rest = (probabilities * ~is_target).sum(dim=1)
    return torch.stack([target, rest], dim=1).clamp_min(1e-12)


@MODELS.register_module()
class DKDLoss(nn.Module):
    """DKD as a module: ``loss_weight · warm-up · dkd_loss(z_s, z_t, labels, ...)``.

    It needs the ground-truth labels (``requires_labels``): the distiller passes them for
    classifiers without batch augments. The authors' settings are alpha = 1, beta = 8, tau = 4
    (CIFAR-100) and beta = 0.5, tau = 1 (ImageNet), with the loss weight warmed up linearly over
    the first 20 epochs.

    Args:
        alpha: Weight of the target-class term TCKD. Defaults to 1.0.
        beta: Weight of the non-target-class term NCKD. Defaults to 8.0.
        tau: Softening temperature. Defaults to 4.0.
        loss_weight: Multiplier of the loss. Defaults to 1.0.
        warmup_epochs: The loss weight grows linearly to its value over this many epochs
            (``min((epoch + 1) / warmup_epochs, 1)``, epoch 0-based, read from the runner's
            message hub; an iteration-based loop stays at epoch 0, so use it with epoch-based
            training). Defaults to 0 (no warm-up).
    """

    requires_labels = True

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, tau: float = 4.0,
                 loss_weight: float = 1.0, warmup_epochs: int = 0) -> None:
        super().__init__()
        check_softening('DKDLoss', tau, 'softmax')
        self.alpha, self.beta, self.tau = alpha, beta, tau
        self.loss_weight = loss_weight
        self.warmup_epochs = warmup_epochs

    def warmup_factor(self) -> float:
        """The warm-up multiplier of the current epoch."""
        if not self.warmup_epochs:
            return 1.0
        epoch = MessageHub.get_current_instance().get_info('epoch', 0)
        return min((epoch + 1) / self.warmup_epochs, 1.0)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: Optional[torch.Tensor] = None,
                detach_target: bool = True) -> torch.Tensor:
        """Args: student_logits (N, C); teacher_logits (N, C), the target; labels (N,).
        Returns: scalar tensor."""
        if labels is None:
            raise ValueError('DKDLoss needs the ground-truth labels (classifiers only)')
        loss = dkd_loss(student_logits, teacher_logits, labels, self.alpha, self.beta, self.tau,
                        detach_target)
        return self.loss_weight * self.warmup_factor() * loss
