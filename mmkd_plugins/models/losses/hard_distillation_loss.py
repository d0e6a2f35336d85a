"""Hard-label distillation (Touvron et al., 2021, DeiT, the equation of §5): cross-entropy with the
teacher's argmax as the label."""

import torch
import torch.nn.functional as F
from torch import nn

from mmkd_plugins.registry import MODELS
from .probabilities import at_least_float32


def hard_distillation_loss(student_logits: torch.Tensor,
                           teacher_logits: torch.Tensor) -> torch.Tensor:
    """``(1/N) Σ_i CE(softmax(z_s,i), argmax_c z_t,i)``: the batch-mean cross-entropy of the
    student's logits against the teacher's top class (DeiT's ``L_hardDistill`` term without its 1/2;
    the label is a constant, no gradient reaches the teacher). Computed in fp32 through log-softmax,
    finite for saturated logits.

    Args:
        student_logits: Student logits, shape (N, C).
        teacher_logits: Teacher logits, shape (N, C).

    Returns:
        Scalar tensor.
    """
    teacher_labels = teacher_logits.detach().argmax(dim=1)
    return F.cross_entropy(at_least_float32(student_logits), teacher_labels)


@MODELS.register_module()
class HardDistillationLoss(nn.Module):
    """DeiT's hard distillation: cross-entropy with the teacher's argmax labels.

    DeiT trains ``½ CE(class logits, y) + ½ CE(distillation logits, argmax teacher)``: with a
    two-classifier student head (DeiT, LeViT, EfficientFormer) write the Distiller's
    ``student_loss_weight=0.5`` and this loss's ``loss_weight=0.5``.

    Args:
        loss_weight: Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """Hard-label distillation of a batch.

        Args:
            student_logits: Shape (N, C).
            teacher_logits: Shape (N, C).

        Returns:
            ``loss_weight`` times :func:`hard_distillation_loss`, a scalar.
        """
        return self.loss_weight * hard_distillation_loss(student_logits, teacher_logits)
