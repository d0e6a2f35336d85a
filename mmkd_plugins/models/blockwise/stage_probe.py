"""The build-time probe of block-wise distillation: record both backbones' stage states on a random
image, check that each split is a cut of its backbone's forward, and find which stage states a
model's neck and head read."""

from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple, cast

import torch
from mmengine.model import BaseModel
from torch import nn

from ..module_output_recorder import ModuleOutputRecorder
from ..task_adapters.protocol import HybridTaskAdapter
from .backbone_stages import (BackboneStages, StageState, stages_cut_at, state_features,
                              with_features)

DEFAULT_PROBE_SIZE = 384


def fixed_input_size(backbone: nn.Module, split: BackboneStages) -> Optional[Tuple[int, int]]:
    """The (H, W) input ``backbone`` was built for, where it says: its split's ``input_size``, its
    ``img_size``, or its patch embedding's ``img_size`` or ``init_input_size``."""
    patch_embed = getattr(backbone, 'patch_embed', None)
    for size in (split.input_size, getattr(backbone, 'img_size', None),
                 getattr(patch_embed, 'img_size', None),
                 getattr(patch_embed, 'init_input_size', None)):
        if isinstance(size, int):
            return size, size
        if isinstance(size, (tuple, list)) and len(size) == 2:
            return int(size[0]), int(size[1])
    return None


def probe_image_size(probe_size: Optional[int],
                     backbones: Sequence[Tuple[nn.Module, BackboneStages]]) -> Tuple[int, int]:
    """(H, W) of the probe image: ``probe_size`` if given, else the first fixed input size of
    ``backbones`` (:func:`fixed_input_size`), else :data:`DEFAULT_PROBE_SIZE`."""
    if probe_size is not None:
        return probe_size, probe_size
    for backbone, split in backbones:
        size = fixed_input_size(backbone, split)
        if size is not None:
            return size
    return DEFAULT_PROBE_SIZE, DEFAULT_PROBE_SIZE


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode for a probe, then restore each one's mode."""
    modes = [(module, module.training) for model in models for module in model.modules()]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def probe_stages(backbone: nn.Module, split: BackboneStages, inputs: torch.Tensor,
                 field: str) -> Tuple[List[StageState], tuple]:
    """Run ``backbone`` once and record every stage's state.

    Args:
        backbone: The backbone.
        split: Its stages.
        inputs: The probe image, (1, 3, H, W).
        field: The config field to name in errors.

    Returns:
        The state of each stage, and what the backbone's ``forward`` returned.

    Raises:
        ValueError: the backbone cannot run on the probe image (an input size other than the
            one it was built for: the other model's, or ``model.hybrids.probe_size``).
    """
    names = [split.output_module(stage) for stage in range(split.num_stages)]
    try:
        with torch.no_grad(), ModuleOutputRecorder(backbone, names) as recorder:
            outputs = backbone(inputs)
    except Exception as error:  # the backbone's own message says what it expected
        raise ValueError(
            f'{field}: this {type(backbone).__name__} does not run on a {inputs.shape[2]}×'
            f'{inputs.shape[3]} image ({type(error).__name__}: {error}); block-wise hybrids '
            'run both backbones at one input size (the student\'s fixed input size where it '
            'has one, else the teacher\'s, else model.hybrids.probe_size): pick student and '
            'teacher configs of one input size') from error
    return [recorder.outputs[name] for name in names], tuple(outputs)


def same_tensors(expected: Sequence[torch.Tensor], produced: Sequence[torch.Tensor]) -> bool:
    """Whether two tensor lists have equal shapes and close values, pairwise."""
    return len(expected) == len(produced) and all(
        a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-5)
        for a, b in zip(expected, produced))


def other_image_like(probe: torch.Tensor) -> torch.Tensor:
    """Another random image of the probe's shape: a forward continued from recorded stage states on
    it returns the same outputs only if it reads nothing of its input but sizes."""
    return torch.randn(probe.shape, generator=torch.Generator().manual_seed(1))


def why_not_a_cut(backbone: nn.Module, split: BackboneStages, states: Dict[int, StageState],
                  last: int, image: torch.Tensor, expected: List[torch.Tensor],
                  positions: Optional[Sequence[int]] = None,
                  differs: str = 'returns other outputs') -> Optional[str]:
    """Run ``backbone``'s forward continued from ``states`` (:func:`stages_cut_at`, stages
    ``0..last`` standing in) on ``image``, and say why it does not give ``expected``.

    Args:
        backbone: The backbone.
        split: Its stages.
        states: Stage (0-based) -> the state it returns.
        last: The last stage that stands in.
        image: Another image than the one the states were recorded on.
        expected: The tensors the whole forward returned (at ``positions``).
        positions: Which of the forward's outputs to compare. Defaults to all.
        differs: The reason when the outputs differ.

    Returns:
        None when the outputs are ``expected``; else why not (the forward fails, or
        ``differs``).
    """
    try:
        with torch.no_grad(), stages_cut_at(backbone, split, states, last=last):
            outputs = tuple(backbone(image))
        if positions is not None:
            outputs = tuple(outputs[position] for position in positions)
    except Exception as error:  # the forward cannot go on from the stage states
        return f'fails ({type(error).__name__}: {error})'
    return None if same_tensors(expected, tensors_in(outputs)) else differs


def check_stage_split(backbone: nn.Module, split: BackboneStages, states: List[StageState],
                      backbone_outputs: tuple, probe: torch.Tensor, field: str) -> None:
    """Check that the split is a cut of the backbone's forward: for every stage i, the forward
    continued from stage i's recorded state (:func:`stages_cut_at`, on another image) returns what
    the whole forward returned.

    Raises:
        ValueError: naming the first stage after which the forward reads more than that
            stage's state (an earlier stage's, the stem's, or its input's), or fails.
    """
    other_image = other_image_like(probe)
    for stage in range(split.num_stages):
        reason = why_not_a_cut(backbone, split, dict(enumerate(states[:stage + 1])), stage,
                               other_image, tensors_in(backbone_outputs))
        if reason is None:
            continue
        modules = ' -> '.join('(' + ', '.join(names) + ')' for names in split.stages)
        raise ValueError(
            f'{field}: this {type(backbone).__name__} is not a sequence of the stages '
            f'{modules}: its forward continued from the state of stage {stage + 1} '
            f'({split.output_module(stage)!r}) {reason}, so what follows stage '
            f'{stage + 1} reads more than that stage\'s output (the stem, the input or an '
            'earlier stage) and block-wise distillation cannot cut it there')


def tensors_in(nested: Any) -> List[torch.Tensor]:
    """The tensors of a nested tuple/list structure, depth first."""
    if isinstance(nested, torch.Tensor):
        return [nested]
    if isinstance(nested, (list, tuple)):
        return [tensor for item in nested for tensor in tensors_in(item)]
    return []


def read_by_head(adapter: HybridTaskAdapter, model: BaseModel, split: BackboneStages,
                 states: List[StageState], probe: torch.Tensor) -> Tuple[Set[int], Set[int]]:
    """Which stage states and which backbone outputs ``model``'s neck and head read (an FPN reads
    several, may skip the first), found by a backward pass from the head's outputs, with all stages
    standing in.

    Returns:
        The stages (1-based) whose states reach the head, and the positions of the backbone
        outputs it reads (an output may be a tuple of tensors, as a DeiT's (class token,
        distillation token)).
    """
    records = adapter.probe_records(model, probe)
    features = [state_features(state).detach().clone().requires_grad_() for state in states]
    cut = {stage: with_features(state, features[stage]) for stage, state in enumerate(states)}
    with torch.enable_grad(), stages_cut_at(model.backbone, split, cut,
                                            last=split.num_stages - 1):
        backbone_outputs = tuple(model.backbone(probe))
        outputs = [tensor for tensor in tensors_in(backbone_outputs) if tensor.requires_grad]
        head_outputs = adapter.head_forward(model, backbone_outputs, records)
        total = sum(t.sum() for t in tensors_in(head_outputs))
        grads = torch.autograd.grad(cast(torch.Tensor, total), features + outputs,
                                    allow_unused=True)
    read_tensors = {id(output) for output, grad in zip(outputs, grads[len(features):])
                    if grad is not None}
    return ({stage + 1 for stage, grad in enumerate(grads[:len(features)]) if grad is not None},
            {position for position, output in enumerate(backbone_outputs)
             if any(id(tensor) in read_tensors for tensor in tensors_in(output))})
