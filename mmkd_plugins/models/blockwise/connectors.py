"""Stage connectors: map a student stage's features into the teacher's feature space.

A connector is built by :func:`build_connector`, with ``in_channels``, ``out_channels`` and
``scale_factor`` filled in from a probe forward of both models (see
:class:`~mmkd_plugins.models.blockwise.HybridNetworks`); a config names only its type (and any
other argument of its own).
"""

from typing import Any, Dict, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from torch import nn

from mmkd_plugins.registry import MODELS, SCOPE

ScaleFactor = Union[float, Tuple[float, float]]
INFERRED_CONNECTOR_ARGS = ('in_channels', 'out_channels', 'scale_factor')


def is_unit_scale(scale_factor: ScaleFactor) -> bool:
    """Whether ``scale_factor`` keeps the size on both sides."""
    return all(side == 1 for side in (
        scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor, )))


def _resize(features: torch.Tensor, scale_factor: ScaleFactor) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) features by ``scale_factor`` (no-op for 1)."""
    if is_unit_scale(scale_factor):
        return features
    return F.interpolate(features, scale_factor=scale_factor, mode='bilinear',
                         align_corners=False)


@MODELS.register_module()
class ConvBNConnector(nn.Module):
    """1×1 convolution + BatchNorm, then a bilinear resize when the spatial sizes differ.

    Tokens (B, N, C) are mapped per token the same way: the convolution is a linear map of
    each token's channels and the BatchNorm normalizes each channel over the batch's tokens.

    Args:
        in_channels: Channels of the student stage's output, C_s.
        out_channels: Channels of the teacher stage's output, C_t.
        scale_factor: Teacher size / student size of that stage's output (per side, or
            (height, width)); 1 for tokens. Defaults to 1.0 (no resize).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 scale_factor: ScaleFactor = 1.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.scale_factor = scale_factor

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C_s, H, W) -> (B, C_t, H·scale, W·scale), or (B, N, C_s) -> (B, N, C_t)."""
        if features.dim() == 3:  # tokens, seen as a (B, C_s, N, 1) map
            mapped = self.bn(self.conv(features.transpose(1, 2).unsqueeze(-1)))
            return mapped.squeeze(-1).transpose(1, 2)
        return _resize(self.bn(self.conv(features)), self.scale_factor)


@MODELS.register_module()
class IdentityConnector(nn.Module):
    """No mapping at all, for stages whose student and teacher outputs already have the same shape
    (e.g. a student of the teacher's own architecture).

    Raises:
        ValueError: channels or spatial sizes differ.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 scale_factor: ScaleFactor = 1.0) -> None:
        super().__init__()
        if in_channels != out_channels or not is_unit_scale(scale_factor):
            raise ValueError('IdentityConnector needs equal shapes, but the student stage has '
                             f'{in_channels} channels and the teacher stage {out_channels} '
                             f'(size ratio {scale_factor}); use ConvBNConnector')

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) or (B, N, C) -> the same tensor."""
        return features


def build_connector(cfg: dict, student_features: torch.Tensor, teacher_features: torch.Tensor,
                    field: str) -> nn.Module:
    """Build a connector from student-stage to teacher-stage features of the probe's shapes.

    Args:
        cfg: The connector config without shapes, e.g. ``dict(type='ConvBNConnector')``.
        student_features: The student stage's probe features, (1, C_s, H_s, W_s) maps or
            (1, N_s, C_s) tokens.
        teacher_features: The teacher stage's, of the same layout.
        field: Config field for errors.
    """
    given = sorted(set(cfg) & set(INFERRED_CONNECTOR_ARGS))
    if given:
        raise ValueError(f'{field}: {given} are inferred from the models; remove them')
    layouts = {4: 'a (B, C, H, W) map', 3: '(B, N, C) tokens'}
    student_dims, teacher_dims = student_features.dim(), teacher_features.dim()
    if student_dims != teacher_dims or student_dims not in layouts:
        raise ValueError(f'{field}: the student stage gives {tuple(student_features.shape)} '
                         f'and the teacher stage {tuple(teacher_features.shape)}; connectors '
                         'map between two maps or two token sequences, and a change of layout '
                         'needs tokens on a grid the probe finds (see the user guide, '
                         'block-wise across architectures)')
    shapes: Dict[str, Any]
    if student_dims == 3:
        if student_features.shape[1] != teacher_features.shape[1]:
            raise ValueError(f'{field}: the student stage has {student_features.shape[1]} '
                             f'tokens and the teacher stage {teacher_features.shape[1]}, on no '
                             'grid the probe finds; connectors keep the token count')
        shapes = dict(in_channels=student_features.shape[2],
                      out_channels=teacher_features.shape[2], scale_factor=1.0)
    else:
        height_ratio = teacher_features.shape[2] / student_features.shape[2]
        width_ratio = teacher_features.shape[3] / student_features.shape[3]
        shapes = dict(in_channels=student_features.shape[1],
                      out_channels=teacher_features.shape[1],
                      scale_factor=height_ratio if height_ratio == width_ratio else
                      (height_ratio, width_ratio))
    try:
        with DefaultScope.overwrite_default_scope(SCOPE):
            return MODELS.build(dict(cfg, **shapes))
    except (KeyError, ValueError) as error:
        raise type(error)(f'{field}: {error}') from error
