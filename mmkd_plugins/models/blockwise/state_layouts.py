"""Stage-state layouts, and the change of layout a hybrid across architectures makes.

A stage state's features are a (B, C, H, W) map or (B, N, C) tokens. Tokens are E extra tokens
(class, distillation) followed by the patch tokens of an h × w grid, row by row; the grid lies on
the input at the stage's stride, h = ⌈H_in / stride⌉, unless the state carries its own (h, w) (a
Swin stage's (tokens, (h, w))). :func:`describe_layout` reads this from the build-time probe.

When the student stage and the teacher stage it feeds have different layouts (a CNN student and a
transformer teacher, or token grids of different sizes), :class:`LayoutChange` makes the
student's features a map, lets the connector map it (channels, and size at the probe's ratio),
resizes it to the teacher stage's grid for the batch's actual input size, and lays it out as
the teacher's state: flattened into tokens, plus the teacher's own position embedding where its
backbone adds one to the patch tokens, after E learned extra tokens.
"""

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .backbone_stages import StageState, state_features, with_features

MAX_EXTRA_TOKENS = 8
ImageSize = Tuple[int, int]


@dataclass(frozen=True)
class StateLayout:
    """How one stage's state lays out its features.

    Attributes:
        tokens: Whether the features are (B, N, C) tokens (else a (B, C, H, W) map).
        stride: Input size / grid size of the state, per side.
        extra_tokens: E, the tokens before the patch tokens. Defaults to 0.
        grid_index: Where the state (a tuple) holds its grid (h, w), if it does. Defaults to
            None.
    """

    tokens: bool
    stride: float
    extra_tokens: int = 0
    grid_index: Optional[int] = None

    def grid(self, state: StageState, image_size: ImageSize) -> ImageSize:
        """(h, w) of the state's map or patch-token grid for an input of ``image_size``."""
        if self.grid_index is not None:
            height, width = state[self.grid_index]
            return int(height), int(width)
        if not self.tokens:
            height, width = state_features(state).shape[-2:]
            return int(height), int(width)
        return self.grid_for(image_size)

    def grid_for(self, image_size: ImageSize) -> ImageSize:
        """(h, w) = ⌈(H_in, W_in) / stride⌉, the grid of an input of ``image_size``."""
        height, width = (math.ceil(side / self.stride - 1e-6) for side in image_size)
        return height, width

    def as_map(self, state: StageState, image_size: ImageSize) -> torch.Tensor:
        """The state's features as a (B, C, h, w) map (the extra tokens left out).

        Raises:
            RuntimeError: the patch tokens are not h·w (an input the layout does not fit).
        """
        features = state_features(state)
        if not self.tokens:
            return features
        height, width = self.grid(state, image_size)
        patches = features[:, self.extra_tokens:]
        if patches.shape[1] != height * width:
            raise RuntimeError(
                f'a stage state of {features.shape[1]} tokens, {self.extra_tokens} of them '
                f'extra, is not a {height}×{width} grid for a {image_size[0]}×{image_size[1]} '
                f'input at stride {self.stride}')
        return patches.transpose(1, 2).reshape(features.shape[0], features.shape[2], height,
                                               width)

    def same_as(self, other: 'StateLayout', state: StageState,
                other_state: StageState) -> bool:
        """Whether ``state`` (of this layout) and ``other_state`` (of ``other``) share one layout
        a connector maps directly: two maps, or as many tokens with as many extra ones."""
        if self.tokens != other.tokens:
            return False
        return not self.tokens or (
            self.extra_tokens == other.extra_tokens
            and state_features(state).shape[1] == state_features(other_state).shape[1])


def _grid_pair(item: Any) -> bool:
    """Whether ``item`` is an (h, w) pair of integers."""
    return (isinstance(item, (tuple, list, torch.Size)) and len(item) == 2
            and all(isinstance(side, int) for side in item))


def describe_layout(state: StageState, probe_size: ImageSize,
                    backbone: nn.Module) -> Optional[StateLayout]:
    """The layout of a stage state recorded on a probe image of ``probe_size``.

    Tokens are placed on their grid by the (h, w) their state carries, else by the backbone's
    ``num_extra_tokens`` (mmpretrain's ViTs say it), else as the fewest extra tokens (at most
    :data:`MAX_EXTRA_TOKENS`) that leave a square grid (the probe is square).

    Returns:
        The layout, or None for tokens that lie on no grid found so (and states of another
        rank).
    """
    features = state_features(state)
    if features.dim() == 4:
        return StateLayout(tokens=False, stride=probe_size[0] / features.shape[2])
    if features.dim() != 3:
        return None
    count = features.shape[1]
    if isinstance(state, (tuple, list)):
        for index, item in enumerate(state):
            if _grid_pair(item) and 0 <= count - item[0] * item[1] <= MAX_EXTRA_TOKENS:
                return StateLayout(tokens=True, stride=probe_size[0] / item[0],
                                   extra_tokens=count - item[0] * item[1], grid_index=index)
    declared = getattr(backbone, 'num_extra_tokens', None)
    candidates = [declared] if isinstance(declared, int) else range(MAX_EXTRA_TOKENS + 1)
    for extra in candidates:
        side = math.isqrt(max(count - extra, 0))
        if side > 0 and side * side == count - extra:
            return StateLayout(tokens=True, stride=probe_size[0] / side, extra_tokens=extra)
    return None


def describe_layouts(states: Sequence[StageState], probe_size: ImageSize,
                     backbone: nn.Module) -> list:
    """:func:`describe_layout` of every stage state (None where none is found)."""
    return [describe_layout(state, probe_size, backbone) for state in states]


def teacher_position_embedding(backbone: nn.Module,
                               channels: int) -> Optional[Callable[[], torch.Tensor]]:
    """A reader of the patch part of the teacher backbone's position embedding, as a (1, C, h_0,
    w_0) map, where the backbone adds one (a ``pos_embed`` of (1, E + h_0·w_0, C) with its
    ``patch_resolution`` (h_0, w_0), as mmpretrain's ViTs); None otherwise.

    The reader returns the live (frozen) parameter: the hybrids hold no copy of it.
    """
    embedding = getattr(backbone, 'pos_embed', None)
    resolution = getattr(backbone, 'patch_resolution', None)
    if (not isinstance(embedding, torch.Tensor) or resolution is None
            or not _grid_pair(tuple(resolution))):
        return None
    height, width = tuple(resolution)
    if embedding.dim() != 3 or embedding.shape[2] != channels or embedding.shape[
            1] < height * width:
        return None

    def read() -> torch.Tensor:
        patches = embedding[:, embedding.shape[1] - height * width:]
        return patches.transpose(1, 2).reshape(1, channels, height, width)

    return read


def _resize_to(features: torch.Tensor, grid: ImageSize, mode: str = 'bilinear') -> torch.Tensor:
    """(B, C, H, W) -> (B, C, h, w), bilinear (no-op when the sizes agree)."""
    if tuple(features.shape[-2:]) == tuple(grid):
        return features
    return F.interpolate(features, size=grid, mode=mode, align_corners=False)


class LayoutChange(nn.Module):
    """Carries a student stage's state into the layout of the teacher stage it feeds, around the
    stage's connector.

    ``student state -> map -> connector -> resized to the teacher grid -> teacher state``; for a
    token teacher the map is flattened row by row, the teacher's position embedding (resized
    bicubically to the grid) is added where its backbone has one, and E learned extra tokens
    (initialized to the teacher's own on the probe image) are put in front.

    Args:
        student_layout: The student stage's layout.
        teacher_layout: The teacher stage's layout.
        teacher_state: The teacher stage's state on the probe image: the form of the state to
            make (a tensor, or a tuple with the features and grid where they are).
        position_embedding: A reader of the teacher's position embedding
            (:func:`teacher_position_embedding`), or None.
    """

    position_embedding: Optional[Callable[[], torch.Tensor]]  # not a submodule

    def __init__(self, student_layout: StateLayout, teacher_layout: StateLayout,
                 teacher_state: StageState,
                 position_embedding: Optional[Callable[[], torch.Tensor]] = None) -> None:
        super().__init__()
        self.student_layout, self.teacher_layout = student_layout, teacher_layout
        features = state_features(teacher_state)
        self.form = with_features(teacher_state, features.new_empty(0))  # features to fill in
        extra = teacher_layout.extra_tokens
        self.extra_tokens = (nn.Parameter(features[:, :extra].detach().clone())
                             if teacher_layout.tokens and extra else None)
        object.__setattr__(self, 'position_embedding', position_embedding)

    def forward(self, student_state: StageState, connector: nn.Module,
                image_size: ImageSize) -> StageState:
        """The connected state, in the teacher stage's layout.

        Args:
            student_state: The student stage's state, (B, C_s, H, W) or (B, N_s, C_s) tokens
                (with its grid).
            connector: The stage's connector, a map of (B, C_s, H, W) to (B, C_t, H', W').
            image_size: The batch's input (H_in, W_in).

        Returns:
            A (B, C_t, h, w) map, or (B, E + h·w, C_t) tokens (in the teacher state's tuple
            with (h, w) where it has one), (h, w) the teacher stage's grid for the input.
        """
        feature_map = connector(self.student_layout.as_map(student_state, image_size))
        grid = self.teacher_layout.grid_for(image_size)
        feature_map = _resize_to(feature_map, grid)
        if not self.teacher_layout.tokens:
            return self._state(feature_map, grid)
        if self.position_embedding is not None:
            feature_map = feature_map + _resize_to(self.position_embedding(), grid,
                                                   mode='bicubic')
        tokens = feature_map.flatten(2).transpose(1, 2)
        if self.extra_tokens is not None:
            tokens = torch.cat([self.extra_tokens.expand(tokens.shape[0], -1, -1), tokens], 1)
        return self._state(tokens, grid)

    def _state(self, features: torch.Tensor, grid: ImageSize) -> StageState:
        """``features`` in the teacher state's form, with ``grid`` where it holds its (h, w)."""
        state = with_features(self.form, features)
        if self.teacher_layout.grid_index is None:
            return state
        return type(state)(grid if k == self.teacher_layout.grid_index else item
                           for k, item in enumerate(state))
