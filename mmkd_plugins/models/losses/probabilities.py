"""Turning logits into probabilities and rows into weighted means, shared by the losses."""

from typing import Optional, Union

import torch

ACTIVATIONS = ('softmax', 'sigmoid')


def check_softening(loss_name: str, tau: Union[float, dict], activation: str) -> None:
    """Refuse a non-positive temperature or an unknown activation, naming the loss (a learnable
    temperature, given as a config dict, keeps itself in range).

    Raises:
        ValueError: ``tau <= 0`` or ``activation`` not in :data:`ACTIVATIONS`.
    """
    if not isinstance(tau, dict) and tau <= 0:
        raise ValueError(f'{loss_name}: tau must be > 0, got {tau}')
    if activation not in ACTIVATIONS:
        raise ValueError(f'{loss_name}: activation must be one of {ACTIVATIONS}, '
                         f'got {activation!r}')


def probabilities(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """``softmax`` over the last dimension, or an independent ``sigmoid`` per element.

    Args:
        logits: Shape (N, C).
        activation: ``'softmax'`` or ``'sigmoid'``.

    Returns:
        Shape (N, C).
    """
    if activation == 'softmax':
        return logits.softmax(dim=-1)
    if activation == 'sigmoid':
        return logits.sigmoid()
    raise ValueError(f'activation must be one of {ACTIVATIONS}, got {activation!r}')


def row_weights_by_confidence(teacher_logits: torch.Tensor, tau: Union[float, torch.Tensor],
                              activation: str) -> torch.Tensor:
    """The teacher's highest probability in each row, shape (N,), detached."""
    return probabilities(at_least_float32(teacher_logits.detach()) / tau,
                         activation).amax(dim=-1)


def weighted_mean(values: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``Σ w_i v_i / Σ w_i`` (plain mean when ``weights`` is None).

    Shapes (N,).
    """
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def as_target(logits: torch.Tensor, detach: bool) -> torch.Tensor:
    """The target side of a loss: ``logits`` cut from the graph when ``detach``."""
    return logits.detach() if detach else logits


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 when it is half or bfloat16 (mixed precision), else unchanged (float64
    stays float64, so that references can be checked in double precision)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def squared_per_row(tau: Union[float, torch.Tensor]) -> Union[float, torch.Tensor]:
    """``tau²``, broadcastable against per-row values (N,): a number, a scalar tensor, or (N,) for
    an instance-wise temperature of shape (N, 1)."""
    if isinstance(tau, torch.Tensor) and tau.dim() > 0:
        return tau.reshape(-1)**2
    return tau**2
