"""Re-normalize inputs prepared for the student into what the teacher was trained on."""
from typing import Optional, Tuple

import torch
from torch import nn


def normalization_of(data_preprocessor: nn.Module,
                     channels: int = 3) -> Tuple[torch.Tensor, torch.Tensor, bool]:
    """Read (mean, std, swaps BGR<->RGB) from an mmengine/mmpretrain/mmdet data preprocessor.

    Returns:
        mean and std of shape (C, 1, 1) (0 and 1 when normalization is off) and whether the
        preprocessor reverses the channel order.
    """
    if getattr(data_preprocessor, '_enable_normalize', False):
        mean = data_preprocessor.mean.detach().float().reshape(-1, 1, 1)
        std = data_preprocessor.std.detach().float().reshape(-1, 1, 1)
    else:
        mean = torch.zeros(channels, 1, 1)
        std = torch.ones(channels, 1, 1)
    swaps_channels = bool(getattr(data_preprocessor, 'to_rgb', False)
                          or getattr(data_preprocessor, '_channel_conversion', False))
    return mean, std, swaps_channels


class InputRenormalizer(nn.Module):
    """Maps a student-normalized batch to the teacher's normalization.

    ``x_t = (flip(x_s · std_s + mean_s) - mean_t) / std_t``, where ``flip`` reverses the channels
    only when exactly one of the two preprocessors converts BGR to RGB.

    Args:
        student_preprocessor: The student's data preprocessor (it prepared the batch).
        teacher_preprocessor: The teacher's data preprocessor (never run; only read).
    """

    def __init__(self, student_preprocessor: nn.Module, teacher_preprocessor: nn.Module) -> None:
        super().__init__()
        student_mean, student_std, student_swaps = normalization_of(student_preprocessor)
        teacher_mean, teacher_std, teacher_swaps = normalization_of(teacher_preprocessor)
        self.register_buffer('student_mean', student_mean, persistent=False)
        self.register_buffer('student_std', student_std, persistent=False)
        self.register_buffer('teacher_mean', teacher_mean, persistent=False)
        self.register_buffer('teacher_std', teacher_std, persistent=False)
        self.flip_channels = student_swaps != teacher_swaps

    @property
    def is_identity(self) -> bool:
        """True when both models expect the same normalization."""
        return (not self.flip_channels and torch.equal(self.student_mean, self.teacher_mean)
                and torch.equal(self.student_std, self.teacher_std))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Args: inputs (N, C, H, W), student-normalized. Returns: (N, C, H, W) for the teacher."""
        if self.is_identity:
            return inputs
        raw = inputs * self.student_std + self.student_mean
        if self.flip_channels:
            raw = raw.flip(1)
        return (raw - self.teacher_mean) / self.teacher_std


def build_renormalizer(student_preprocessor: nn.Module,
                       teacher_preprocessor: Optional[nn.Module]) -> InputRenormalizer:
    """An :class:`InputRenormalizer`; identity when the teacher has no preprocessor of its own."""
    return InputRenormalizer(student_preprocessor, teacher_preprocessor or student_preprocessor)
