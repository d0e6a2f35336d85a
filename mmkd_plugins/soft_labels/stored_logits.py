"""The teacher's top-k probabilities as stored, and logits rebuilt from them for the losses."""

from typing import Tuple

import torch

TINY = torch.finfo(torch.float32).tiny  # log(TINY) ≈ -87.3 stands for a probability of 0


def top_k_soft_labels(logits: torch.Tensor, tau: float,
                      top_k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The k most probable classes of ``softmax(logits / tau)``, as a store keeps them.

    Args:
        logits: Teacher logits, (N, C).
        tau: The store's temperature.
        top_k: k ≤ C.

    Returns:
        probabilities (N, k) float16 in decreasing order, and their classes (N, k) int64.
    """
    probabilities = torch.softmax(logits.float() / tau, dim=1)
    values, classes = probabilities.topk(top_k, dim=1, sorted=True)
    return values.half(), classes


def logits_from_soft_labels(probabilities: torch.Tensor, classes: torch.Tensor,
                            num_classes: int, tau: float) -> torch.Tensor:
    """Logits whose ``softmax(· / tau)`` is the stored distribution, for the losses.

    The k stored classes keep their probabilities; the other C - k classes share the rest of
    the mass, ``max(1 - Σ p_stored, 0)``, equally. The logits are ``tau · log p`` (a probability
    of 0 becomes ``tau · log(float32 tiny)``): the teacher's own logits up to a constant per row
    when k = C, so every softmax-based loss (KD, DIST, DKD, a learned CTKD temperature) sees the
    teacher's distribution; with k < C, at another temperature than the store's, the C - k
    classes stay equal to each other.

    Args:
        probabilities: (B, k) stored probabilities, any float type.
        classes: (B, k) their class indices.
        num_classes: C.
        tau: The store's temperature.

    Returns:
        (B, C) float32.
    """
    probabilities = probabilities.float()
    stored = probabilities.shape[1]
    if stored == num_classes:
        full = torch.zeros(probabilities.shape[0], num_classes, device=probabilities.device)
    else:
        rest = (1.0 - probabilities.sum(dim=1, keepdim=True)).clamp_min(0.0)
        full = (rest / (num_classes - stored)).expand(-1, num_classes).clone()
    full.scatter_(1, classes, probabilities)
    return tau * full.clamp_min(TINY).log()
