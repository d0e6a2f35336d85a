"""Classic knowledge distillation loss (Hinton et al., 2015)."""
import torch
import torch.nn.functional as F
from torch import nn

from mmkd_plugins.registry import MODELS


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            tau: float) -> torch.Tensor:
    """Batch-mean KL divergence between temperature-softened distributions, times tau².

    ``tau² · (1/B) · Σ_i KL(softmax(z_t,i / tau) ‖ softmax(z_s,i / tau))``: the KL of each sample
    is summed over its C classes, then averaged over the B samples (not over B·C elements).
    Computed in fp32.

    Args:
        student_logits: Student logits, shape (B, C).
        teacher_logits: Teacher logits, shape (B, C); treated as a constant target.
        tau: Softening temperature, > 0.

    Returns:
        Scalar tensor.
    """
    log_q_student = F.log_softmax(student_logits.float() / tau, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach().float() / tau, dim=1)
    kl_per_sample = F.kl_div(
        log_q_student, log_p_teacher, reduction='none', log_target=True).sum(dim=1)
    return kl_per_sample.mean() * tau**2


@MODELS.register_module()
class KDLoss(nn.Module):
    """Hinton's distillation loss as a module: ``loss_weight · kd_loss(z_s, z_t, tau)``.

    Args:
        tau: Softening temperature. Defaults to 4.0.
        loss_weight: Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, tau: float = 4.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'KDLoss: tau must be > 0, got {tau}')
        self.tau = tau
        self.loss_weight = loss_weight

    def forward(self, student_logits: torch.Tensor,
                teacher_logits: torch.Tensor) -> torch.Tensor:
        """Args: student_logits (B, C); teacher_logits (B, C). Returns: scalar tensor."""
        return self.loss_weight * kd_loss(student_logits, teacher_logits, self.tau)
