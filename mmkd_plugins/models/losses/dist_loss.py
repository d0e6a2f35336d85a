"""DIST: distillation by inter- and intra-class Pearson correlation (Huang et al., 2022)."""
import torch
from torch import nn

from mmkd_plugins.registry import MODELS
from .cross_process import gather_rows, scale_gradient_by_world_size


def pearson_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over rows of ``1 - pearson(a[i], b[i])``.

    ``pearson(u, v) = <u - mean(u), v - mean(v)> / max(‖u - mean(u)‖ · ‖v - mean(v)‖, eps)``,
    the cosine similarity of the centred rows. The eps keeps value and gradient finite when a
    row is constant.

    Args:
        a: Shape (N, D).
        b: Shape (N, D).
        eps: Lower bound of the denominator.

    Returns:
        Scalar tensor in [0, 2].
    """
    a_centred = a - a.mean(dim=1, keepdim=True)
    b_centred = b - b.mean(dim=1, keepdim=True)
    covariance = (a_centred * b_centred).sum(dim=1)
    norms = a_centred.norm(dim=1) * b_centred.norm(dim=1)
    return (1 - covariance / norms.clamp_min(eps)).mean()


def dist_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float,
              gamma: float, tau: float) -> torch.Tensor:
    """DIST loss ``tau² · (beta · L_inter + gamma · L_intra)``.

    With ``Y = softmax(z / tau)`` over classes, ``L_inter`` is the mean over the B samples of
    ``1 - pearson(Y_s[i, :], Y_t[i, :])`` and ``L_intra`` the mean over the C classes of
    ``1 - pearson(Y_s[:, j], Y_t[:, j])`` (each class across the batch). Computed in fp32.

    Args:
        student_logits: Student logits, shape (B, C).
        teacher_logits: Teacher logits, shape (B, C); treated as a constant target.
        beta: Weight of the inter-class (per-sample) term.
        gamma: Weight of the intra-class (per-class, across the batch) term.
        tau: Softening temperature, > 0.

    Returns:
        Scalar tensor.
    """
    y_student = (student_logits.float() / tau).softmax(dim=1)
    y_teacher = (teacher_logits.detach().float() / tau).softmax(dim=1)
    inter = pearson_distance(y_student, y_teacher)
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
        tau: Softening temperature. Defaults to 1.0.
        loss_weight: Multiplier of the loss. Defaults to 1.0.
        sync_batch: Compute the loss over the batches of all processes. Defaults to False.
    """

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, tau: float = 1.0,
                 loss_weight: float = 1.0, sync_batch: bool = False) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f'DISTLoss: tau must be > 0, got {tau}')
        self.beta = beta
        self.gamma = gamma
        self.tau = tau
        self.loss_weight = loss_weight
        self.sync_batch = sync_batch

    def forward(self, student_logits: torch.Tensor,
                teacher_logits: torch.Tensor) -> torch.Tensor:
        """Args: student_logits (B, C); teacher_logits (B, C). Returns: scalar tensor."""
        if not self.sync_batch:
            return self.loss_weight * dist_loss(student_logits, teacher_logits, self.beta,
                                                self.gamma, self.tau)
        loss = dist_loss(gather_rows(student_logits.float()), gather_rows(teacher_logits.float()),
                         self.beta, self.gamma, self.tau)
        return self.loss_weight * scale_gradient_by_world_size(loss)
