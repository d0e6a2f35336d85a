"""Split backbones into stages for block-wise distillation.

A *stage splitter* describes one backbone family: which of the backbone's modules make up each
stage, in call order. The *state* of stage i is what its last module returns: a (B, C, H, W)
map, (B, N, C) tokens, or a tuple holding them with shapes (a Swin stage returns its tokens and
their (H, W)). Everything else the backbone's ``forward`` does (stems, class tokens, position
embeddings, norms on the outputs, pooling) stays in that ``forward``: a hybrid runs the
teacher's own ``forward`` with the modules of stages 1..i standing in (:func:`stages_cut_at`),
so that the forward continues from given states exactly as it would from its own.

Adding a family is one function registered under the backbone's class path (the families this
project knows are in :mod:`mmkd_plugins.models.blockwise.stage_splitters`)::

    @register_stage_splitter('mypackage.models.backbones.my_net.MyNet')
    def split_my_net(backbone) -> BackboneStages:
        return BackboneStages(stages=(('block1', ), ('block2', 'block3')))

Subclasses use their closest registered base class's splitter. Whether a split is a real cut
of the backbone's forward (the forward after stage i reads nothing but stage i's state) is
checked when a hybrid is built (see
:func:`mmkd_plugins.models.blockwise.stage_probe.check_stage_split`), so a subclass whose
forward does something else is refused rather than silently mis-distilled.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn


@dataclass(frozen=True)
class BackboneStages:
    """The stages of one backbone.

    Attributes:
        stages: Per stage, the names (relative to the backbone) of the modules it runs, in
            call order; the last one's output is the stage's state.
        stem: Modules the backbone runs before stage 1 whose outputs only stage 1 reads: a
            hybrid skips them (they pass their input through). Defaults to none (the stem
            runs, and its outputs may be read later, as a ViT's patch grid is).
        input_size: The (H, W) input the backbone's forward requires, where it fixes one (its
            attention biases are built for one resolution) without saying so in an
            ``img_size`` attribute; the build-time probe uses it. Defaults to None.
        input_channels: The channels of the images the backbone takes (the probe image's).
            Defaults to 3.
    """

    stages: Tuple[Tuple[str, ...], ...]
    stem: Tuple[str, ...] = ()
    input_size: Optional[Tuple[int, int]] = None
    input_channels: int = 3

    @property
    def num_stages(self) -> int:
        """The number of stages, n."""
        return len(self.stages)

    def output_module(self, stage: int) -> str:
        """Name (relative to the backbone) of the module whose output is ``stage``'s state
        (0-based)."""
        return self.stages[stage][-1]


class _StageStandIn(nn.Module):
    """Stands in for one module of a backbone during a hybrid's forward: returns a given state, or,
    without one, passes its first input through (the module's work is not needed).

    Attribute reads it does not have go to the module it stands in for (a Swin forward reads
    ``stage.downsample`` after calling the stage).
    """

    def __init__(self, original: nn.Module, state: Any = None) -> None:
        super().__init__()
        object.__setattr__(self, 'original', original)  # not a submodule: no parameters here
        object.__setattr__(self, 'state', state)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.state is not None:
            return self.state
        return args[0] if len(args) == 1 else args

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, 'original'), name)


@contextmanager
def stages_cut_at(backbone: nn.Module, split: BackboneStages, states: Dict[int, Any],
                  last: int) -> Iterator[None]:
    """Within the context, ``backbone``'s forward starts after stage ``last`` (0-based).

    The stem and every module of stages ``0..last`` stand in: the last module of each stage in
    ``states`` returns that state, every other one passes its input through. The backbone's
    forward then runs stages ``last + 1..n - 1`` on ``states[last]`` and returns its outputs
    as usual (an output it takes from an earlier stage j comes from ``states[j]``).

    Args:
        backbone: The backbone.
        split: Its stages.
        states: Stage (0-based) -> the state it returns; must hold ``last``.
        last: The last stage that stands in.
    """
    names = list(split.stem) + [name for stage in split.stages[:last + 1] for name in stage]
    stand_ins = {name: None for name in names}
    stand_ins.update({split.output_module(stage): state for stage, state in states.items()
                      if stage <= last})
    replaced: List[Tuple[nn.Module, str, nn.Module]] = []
    try:
        for name, state in stand_ins.items():
            parent_name, _, key = name.rpartition('.')
            parent = backbone.get_submodule(parent_name)
            original = backbone.get_submodule(name)
            replaced.append((parent, key, original))
            parent._modules[key] = _StageStandIn(original, state)
        yield
    finally:
        for parent, key, original in reversed(replaced):
            parent._modules[key] = original


StageState = Any  # a stage's output: a tensor, or a tuple holding one with its shape


def state_features(state: StageState) -> torch.Tensor:
    """The features of a stage state: the state itself, or the first tensor of a tuple (a Swin
    stage's (tokens, (H, W)))."""
    if isinstance(state, torch.Tensor):
        return state
    return next(item for item in state if isinstance(item, torch.Tensor))


def with_features(state: StageState, features: torch.Tensor) -> StageState:
    """``state`` with its features (see :func:`state_features`) replaced by ``features``."""
    if isinstance(state, torch.Tensor):
        return features
    position = next(k for k, item in enumerate(state) if isinstance(item, torch.Tensor))
    return type(state)(features if k == position else item for k, item in enumerate(state))


StageSplitter = Callable[[nn.Module], BackboneStages]
STAGE_SPLITTERS: Dict[str, StageSplitter] = {}
# class path -> why the family's forward is not a sequence of stages
NOT_SPLITTABLE: Dict[str, str] = {}


def register_stage_splitter(class_path: str) -> Callable[[StageSplitter], StageSplitter]:
    """Register a splitter for the backbone class ``'package.module.ClassName'``."""

    def register(splitter: StageSplitter) -> StageSplitter:
        STAGE_SPLITTERS[class_path] = splitter
        return splitter

    return register


def register_not_splittable(class_path: str, reason: str) -> None:
    """Record that the backbone class ``'package.module.ClassName'`` cannot be split, and the
    structural reason (said when a hybrid is asked of it)."""
    NOT_SPLITTABLE[class_path] = reason


def split_backbone(backbone: nn.Module, field: str) -> BackboneStages:
    """The stages of ``backbone``, from the splitter of its closest registered class.

    Args:
        backbone: A backbone module.
        field: The config field to name in errors, e.g. ``'model.student.backbone'``.

    Raises:
        TypeError: no splitter is registered for the backbone's class or its bases, or the
            class is one that cannot be split (the message says why).
        ValueError: the backbone's configuration cannot be split (the message says why).
    """
    for cls in type(backbone).__mro__:
        class_path = f'{cls.__module__}.{cls.__qualname__}'
        if class_path in NOT_SPLITTABLE:
            raise TypeError(f'{field}: block-wise distillation cannot split a '
                            f'{type(backbone).__name__} into stages: '
                            f'{NOT_SPLITTABLE[class_path]}')
        splitter = STAGE_SPLITTERS.get(class_path)
        if splitter is None:
            continue
        try:
            return splitter(backbone)
        except ValueError as error:
            raise ValueError(f'{field}: {error}') from error
    supported = ', '.join(sorted(STAGE_SPLITTERS))
    raise TypeError(f'{field}: block-wise distillation cannot split a '
                    f'{type(backbone).__name__} into stages; supported backbones (and their '
                    f'subclasses): {supported}. A new family needs one stage splitter, see '
                    f'{__name__}')
