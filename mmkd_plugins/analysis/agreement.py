"""How closely a student's predictions follow its teacher's: small pure functions."""

from typing import Dict

import torch

from ..models.losses import binary_kd_loss, kd_loss, pearson_rows

# The plain Pearson correlation (in float64), not DIST's loss convention whose eps of 1e-8
# makes two identical, nearly uniform rows correlate below 1.
PLAIN_PEARSON_EPS = 1e-30


def plain_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of (N, D) rows, computed in float64; shape (N,)."""
    return pearson_rows(a.double(), b.double(), eps=PLAIN_PEARSON_EPS)


def softmax_agreement(teacher_logits: torch.Tensor,
                      student_logits: torch.Tensor) -> Dict[str, float]:
    """Agreement of two classifiers on the same samples.

    Args:
        teacher_logits: Shape (N, C).
        student_logits: Shape (N, C).

    Returns:
        ``top1_agreement`` (fraction of samples with the same top class), ``mean_kl``
        (mean over samples of KL(p_teacher ‖ p_student), in nats) and ``mean_pearson`` (mean over
        samples of the Pearson correlation of the two probability vectors).
    """
    p_teacher = teacher_logits.float().softmax(dim=1)
    p_student = student_logits.float().softmax(dim=1)
    return dict(
        top1_agreement=(p_teacher.argmax(dim=1) == p_student.argmax(dim=1)).float().mean().item(),
        mean_kl=kd_loss(student_logits, teacher_logits, tau=1.0).item(),
        mean_pearson=plain_pearson(p_student, p_teacher).mean().item())


def sigmoid_agreement(teacher_logits: torch.Tensor, student_logits: torch.Tensor,
                      confident: float = 0.5) -> Dict[str, float]:
    """Agreement of two dense detection heads on the same positions (independent sigmoids).

    Args:
        teacher_logits: One row of class scores per position, shape (N, K).
        student_logits: Shape (N, K).
        confident: A position counts for ``top1_agreement`` when the teacher scores some class
            at least this high (elsewhere both models see background). Defaults to 0.5.

    Returns:
        ``top1_agreement`` (over the teacher's confident positions: same top class),
        ``mean_kl`` (mean over positions of the summed per-class Bernoulli KL, in nats) and
        ``mean_pearson`` (mean over positions of the Pearson correlation of the score rows).
    """
    p_teacher = teacher_logits.float().sigmoid()
    p_student = student_logits.float().sigmoid()
    rows = p_teacher.amax(dim=1) >= confident
    same_top = p_teacher[rows].argmax(dim=1) == p_student[rows].argmax(dim=1)
    return dict(
        top1_agreement=same_top.float().mean().item() if rows.any() else float('nan'),
        mean_kl=binary_kd_loss(student_logits, teacher_logits, tau=1.0).item(),
        mean_pearson=plain_pearson(p_student, p_teacher).mean().item())
