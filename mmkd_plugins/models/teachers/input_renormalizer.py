"""Re-normalize inputs prepared for the student into what the teacher was trained on."""

from typing import Optional, Sequence, Tuple, cast

import torch
from torch import nn

from .huggingface_teachers import huggingface_input_size
from .timm_teachers import timm_input_size


def normalization_of(data_preprocessor: nn.Module,
                     channels: int = 3) -> Tuple[torch.Tensor, torch.Tensor, bool]:
    """Read (mean, std, swaps BGR<->RGB) from an mmengine/mmpretrain/mmdet data preprocessor.

    Returns:
        mean and std of shape (C, 1, 1) (0 and 1 when normalization is off) and whether the
        preprocessor reverses the channel order.
    """
    if getattr(data_preprocessor, '_enable_normalize', False):
        mean = cast(torch.Tensor, data_preprocessor.mean).detach().float().reshape(-1, 1, 1)
        std = cast(torch.Tensor, data_preprocessor.std).detach().float().reshape(-1, 1, 1)
    else:
        mean = torch.zeros(channels, 1, 1)
        std = torch.ones(channels, 1, 1)
    swaps_channels = bool(getattr(data_preprocessor, 'to_rgb', False)
                          or getattr(data_preprocessor, '_channel_conversion', False))
    return mean, std, swaps_channels


class InputRenormalizer(nn.Module):
    """Maps a student-normalized batch to the teacher's normalization.

    ``x_t = (flip(x_s · std_s + mean_s) - mean_t) / std_t``, where ``flip`` reverses the channels
    only when exactly one of the two preprocessors converts BGR to RGB. The batch padding
    (which mmengine's preprocessors add *after* normalizing, with their ``pad_value``: every
    pixel beyond a sample's ``img_shape``) becomes the teacher's own ``pad_value``, not the map
    of the student's, so the teacher sees exactly what its own preprocessing would give.

    Args:
        student_preprocessor: The student's data preprocessor (it prepared the batch).
        teacher_preprocessor: The teacher's data preprocessor (never run; only read).
    """

    student_mean: torch.Tensor
    student_std: torch.Tensor
    teacher_mean: torch.Tensor
    teacher_std: torch.Tensor

    def __init__(self, student_preprocessor: nn.Module, teacher_preprocessor: nn.Module) -> None:
        super().__init__()
        student_mean, student_std, student_swaps = normalization_of(student_preprocessor)
        teacher_mean, teacher_std, teacher_swaps = normalization_of(teacher_preprocessor)
        self.register_buffer('student_mean', student_mean, persistent=False)
        self.register_buffer('student_std', student_std, persistent=False)
        self.register_buffer('teacher_mean', teacher_mean, persistent=False)
        self.register_buffer('teacher_std', teacher_std, persistent=False)
        self.flip_channels = student_swaps != teacher_swaps
        self.student_pad_value = float(getattr(student_preprocessor, 'pad_value', 0))
        self.teacher_pad_value = float(getattr(teacher_preprocessor, 'pad_value', 0))

    @property
    def is_identity(self) -> bool:
        """True when both models expect the same normalization and padding."""
        return (not self.flip_channels and torch.equal(self.student_mean, self.teacher_mean)
                and torch.equal(self.student_std, self.teacher_std)
                and self.student_pad_value == self.teacher_pad_value)

    def forward(self, inputs: torch.Tensor,
                data_samples: Optional[Sequence] = None) -> torch.Tensor:
        """The batch as the teacher's own preprocessing would give it.

        Args:
            inputs: Student-normalized batch, (N, C, H, W).
            data_samples: The batch's data samples; their ``img_shape`` tells the padding
                apart (without them the padding is re-normalized like the image).

        Returns:
            (N, C, H, W) for the teacher.
        """
        if self.is_identity:
            return inputs
        raw = inputs * self.student_std + self.student_mean
        if self.flip_channels:
            raw = raw.flip(1)
        teacher_inputs = (raw - self.teacher_mean) / self.teacher_std
        for index, sample in enumerate(data_samples or ()):
            height, width = sample.metainfo.get('img_shape', inputs.shape[-2:])[:2]
            teacher_inputs[index, :, height:, :] = self.teacher_pad_value
            teacher_inputs[index, :, :height, width:] = self.teacher_pad_value
        return teacher_inputs


def expected_input_size(model: nn.Module) -> Optional[Tuple[int, int]]:
    """The (H, W) a model's backbone was built for, when it declares one: transformer and MLP
    backbones built with an ``img_size`` keep it in their patch embedding (Swin, ViT, ...) or as
    their own ``img_size`` (TinyViT, MLP-Mixer, RepMLP, ...), timm networks of a fixed size (see
    :func:`~.timm_teachers.timm_input_size`) and HuggingFace networks whose config has an
    ``image_size`` (see :func:`~.huggingface_teachers.huggingface_input_size`); None for models that
    take any size (CNNs)."""
    hub_size = timm_input_size(model) or huggingface_input_size(model)
    if hub_size is not None:
        return hub_size
    backbone = getattr(model, 'backbone', None)
    size = getattr(getattr(backbone, 'patch_embed', None), 'init_input_size', None)
    if size is None:
        size = getattr(backbone, 'img_size', None)
    if size is None:
        return None
    if isinstance(size, int):
        return size, size
    return cast(Tuple[int, int], tuple(int(side) for side in size))


def resized_to(inputs: torch.Tensor, size: Optional[Tuple[int, int]]) -> torch.Tensor:
    """``inputs`` (N, C, H, W) resized (bilinear) to ``size``, or unchanged when it has that size
    already or ``size`` is None."""
    if size is None or tuple(inputs.shape[-2:]) == tuple(size):
        return inputs
    return nn.functional.interpolate(inputs, size=size, mode='bilinear', align_corners=False)


def build_renormalizer(student_preprocessor: nn.Module,
                       teacher_preprocessor: Optional[nn.Module]) -> InputRenormalizer:
    """An :class:`InputRenormalizer`; identity when the teacher has no preprocessor of its own."""
    return InputRenormalizer(student_preprocessor, teacher_preprocessor or student_preprocessor)
