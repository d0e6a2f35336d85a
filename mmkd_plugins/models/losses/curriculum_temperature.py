"""CTKD's learnable temperature (Li et al., AAAI 2023): trained adversarially through a gradient
reversal layer, with a cosine curriculum on the reversal strength λ."""

import math
from typing import Optional, Union, cast

import torch
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from torch import nn

from mmkd_plugins.registry import MODELS, SCOPE

TAU_MIN = 1.0
TAU_RANGE = 20.0  # tau = 1 + 20 * sigmoid(theta) stays in (1, 21)
AUTHORS_INIT_TAU = TAU_MIN + TAU_RANGE / (1 + math.exp(-1.0))  # θ = 1 at the start: ≈ 15.62
MODES = ('global', 'instance')


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by -λ."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, strength: float) -> torch.Tensor:
        ctx.strength = strength
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.strength * grad, None


def reverse_gradient(tensor: torch.Tensor, strength: float) -> torch.Tensor:
    """``tensor`` unchanged, but the gradient flowing back through it is multiplied by
    ``-strength``."""
    return _ReverseGradient.apply(tensor, strength)


def curriculum_lambda(epoch: int, lambda_max: float, warmup_epochs: int) -> float:
    """λ = λ_max · (1 - cos(π · e / E)) / 2 for e < E, then λ_max, with the epoch e counted
    from 1 as in the authors' training loop (so λ > 0 in the first epoch)."""
    if epoch >= warmup_epochs:
        return lambda_max
    return lambda_max * (1 - math.cos(math.pi * epoch / warmup_epochs)) / 2


def _logit(probability: float) -> float:
    return math.log(probability / (1 - probability))


@MODELS.register_module()
class CurriculumTemperature(nn.Module):
    """A learnable temperature, usable as the ``tau`` of :class:`KDLoss` (global or
    instance-wise) and :class:`DISTLoss` (global).

    ``tau = 1 + 20 · sigmoid(θ)`` keeps it in (1, 21). θ is one parameter (``'global'``) or the
    output of a two-layer MLP on the concatenated, detached student and teacher logits
    (``'instance'``, one temperature per row). The temperature reaches the loss through a
    gradient reversal layer, so the optimizer moves it to *increase* the distillation loss
    while the student decreases it; the reversal strength λ follows
    :func:`curriculum_lambda` of the runner's current epoch. It is trained with the student's
    optimizer, saved in checkpoints and absent from the exported student.

    Args:
        mode: ``'global'`` or ``'instance'``. Defaults to ``'global'``.
        init_tau: The temperature at the start. The authors' global temperature starts at
            θ = 1, i.e. :data:`AUTHORS_INIT_TAU` ≈ 15.62. Defaults to 4.0 (a usual fixed KD
            temperature: the curriculum then starts where plain KD would be).
        num_classes: Logit width C; required for ``'instance'``.
        hidden_channels: Width of the instance-wise MLP. Defaults to 256.
        lambda_max: λ after the warm-up. Defaults to 1.0.
        warmup_epochs: Epochs of the cosine curriculum (10 on CIFAR, 5 on ImageNet in the
            authors' code), counted from 1 (mmengine's 0-based epoch + 1, read from the
            runner's message hub). Epochs exist only in an epoch-based loop:
            :class:`~mmkd_plugins.engine.EpochScheduleCheckHook` refuses the curriculum in an
            iteration-based one. Defaults to 10.
    """

    def __init__(self, mode: str = 'global', init_tau: float = 4.0,
                 num_classes: Optional[int] = None, hidden_channels: int = 256,
                 lambda_max: float = 1.0, warmup_epochs: int = 10) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'CurriculumTemperature: mode must be one of {MODES}, got {mode!r}')
        if not TAU_MIN < init_tau < TAU_MIN + TAU_RANGE:
            raise ValueError(f'CurriculumTemperature: init_tau must be in (1, 21), got {init_tau}')
        self.mode = mode
        self.lambda_max, self.warmup_epochs = lambda_max, warmup_epochs
        theta = _logit((init_tau - TAU_MIN) / TAU_RANGE)
        if mode == 'global':
            self.theta = nn.Parameter(torch.tensor(theta))
        else:
            if num_classes is None:
                raise ValueError("CurriculumTemperature: mode='instance' needs num_classes")
            self.mlp = nn.Sequential(nn.Linear(2 * num_classes, hidden_channels), nn.ReLU(),
                                     nn.Linear(hidden_channels, 1))
            nn.init.zeros_(cast(torch.Tensor, self.mlp[2].weight))  # every row starts at init_tau
            nn.init.constant_(cast(torch.Tensor, self.mlp[2].bias), theta)
        self.last_tau = torch.tensor(init_tau)
        self.last_lambda = 0.0

    @property
    def epoch_schedule(self) -> Optional[str]:
        """What of this module counts epochs (``'warmup_epochs'``), or None."""
        return 'warmup_epochs' if self.warmup_epochs else None

    def current_lambda(self) -> float:
        """The reversal strength λ of the runner's current epoch (the first outside a runner)."""
        epoch = MessageHub.get_current_instance().get_info('epoch', 0)
        return curriculum_lambda(epoch + 1, self.lambda_max, self.warmup_epochs)

    def forward(self, student_logits: torch.Tensor,
                teacher_logits: torch.Tensor) -> torch.Tensor:
        """The temperature for this batch, behind the gradient reversal layer.

        Args:
            student_logits: Shape (N, C).
            teacher_logits: Shape (N, C).

        Returns:
            A scalar tensor (``'global'``) or shape (N, 1) (``'instance'``), in (1, 21).
        """
        if self.mode == 'global':
            theta = self.theta
        else:
            theta = self.mlp(torch.cat([student_logits.detach(), teacher_logits.detach()],
                                       dim=1).float())
        tau = TAU_MIN + TAU_RANGE * torch.sigmoid(theta)
        self.last_lambda = self.current_lambda()
        self.last_tau = tau.detach().mean()
        return reverse_gradient(tau, self.last_lambda)


def build_temperature(tau: Union[float, dict], loss_name: str,
                      instance_allowed: bool) -> Optional[nn.Module]:
    """The learnable temperature module of a loss whose ``tau`` is a config dict, else None.

    Raises:
        ValueError: an instance-wise temperature for a loss that takes one temperature only.
    """
    if not isinstance(tau, dict):
        return None
    with DefaultScope.overwrite_default_scope(SCOPE):
        module = MODELS.build(tau)
    if not instance_allowed and getattr(module, 'mode', 'global') != 'global':
        raise ValueError(f'{loss_name}: takes one temperature for the whole batch; use '
                         "CurriculumTemperature(mode='global')")
    return module
