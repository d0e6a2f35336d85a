"""Split backbones into stages for block-wise distillation.

A *stage splitter* describes one backbone family: which of the backbone's child modules make up
each stage (run in order; the stage's output is the last one's output) and which stage outputs
the backbone returns. The stem is not needed: a hybrid network starts from the student's own
stage outputs (recorded during its stock forward) and runs only teacher stages after them.

Adding a family is one function registered under the backbone's class path::

    @register_stage_splitter('mypackage.models.backbones.my_net.MyNet')
    def split_my_net(backbone) -> BackboneStages:
        return BackboneStages(stages=(('block1', ), ('block2', 'block3')),
                              output_stages=(1, ))

Subclasses use their closest registered base class's splitter. Whether a split reproduces the
backbone's own forward is checked when a hybrid is built (see
:func:`mmkd_plugins.models.blockwise.hybrid_networks.check_stage_split`), so a subclass whose
forward does something else between stages is refused rather than silently mis-distilled.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple, cast

import torch
from torch import nn


@dataclass(frozen=True)
class BackboneStages:
    """The stages of one backbone.

    Attributes:
        stages: Per stage, the names of the backbone's child modules it runs, in order.
        output_stages: For each tensor the backbone's ``forward`` returns, in order, the
            (0-based) stage whose output it is.
    """
    stages: Tuple[Tuple[str, ...], ...]
    output_stages: Tuple[int, ...]

    @property
    def num_stages(self) -> int:
        """The number of stages, n."""
        return len(self.stages)

    def output_module(self, stage: int) -> str:
        """Name (relative to the backbone) of the module whose output is ``stage``'s output."""
        return self.stages[stage][-1]

    def run(self, backbone: nn.Module, features: torch.Tensor, first: int) -> List[torch.Tensor]:
        """Run stages ``first, first + 1, ..., n - 1`` (0-based) of ``backbone``.

        Args:
            backbone: The backbone the stages belong to.
            features: The input of stage ``first`` (the output of stage ``first - 1``),
                shape (B, C, H, W).
            first: The first stage to run.

        Returns:
            The output of each stage that ran, in order.
        """
        outputs = []
        for names in self.stages[first:]:
            for name in names:
                features = getattr(backbone, name)(features)
            outputs.append(features)
        return outputs


StageSplitter = Callable[[nn.Module], BackboneStages]
STAGE_SPLITTERS: Dict[str, StageSplitter] = {}


def register_stage_splitter(class_path: str) -> Callable[[StageSplitter], StageSplitter]:
    """Register a splitter for the backbone class ``'package.module.ClassName'``."""

    def register(splitter: StageSplitter) -> StageSplitter:
        STAGE_SPLITTERS[class_path] = splitter
        return splitter

    return register


def split_backbone(backbone: nn.Module, field: str) -> BackboneStages:
    """The stages of ``backbone``, from the splitter of its closest registered class.

    Args:
        backbone: A backbone module.
        field: The config field to name in errors, e.g. ``'model.student.backbone'``.

    Raises:
        TypeError: no splitter is registered for the backbone's class or its bases.
        ValueError: the backbone's configuration cannot be split (the message says why).
    """
    for cls in type(backbone).__mro__:
        splitter = STAGE_SPLITTERS.get(f'{cls.__module__}.{cls.__qualname__}')
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


def _outputs_at_stage_ends(out_indices: Sequence[int], stage_ends: Tuple[int, ...],
                           backbone_name: str) -> Tuple[int, ...]:
    """Map a backbone's ``out_indices`` (in its own layer numbering) to stage indices.

    Args:
        out_indices: The layers whose outputs the backbone returns.
        stage_ends: The layer index that ends each stage.
        backbone_name: For the error message.
    """
    stage_of_layer = {layer: stage for stage, layer in enumerate(stage_ends)}
    inside = sorted(set(out_indices) - set(stage_of_layer))
    if inside:
        raise ValueError(f'{backbone_name} out_indices {tuple(out_indices)} returns layers '
                         f'{inside} from inside a stage; block-wise distillation needs outputs '
                         f'at stage ends, i.e. out_indices within {stage_ends}')
    return tuple(stage_of_layer[layer] for layer in sorted(set(out_indices)))


@register_stage_splitter('mmpretrain.models.backbones.resnet.ResNet')
@register_stage_splitter('mmdet.models.backbones.resnet.ResNet')
def split_resnet(backbone: nn.Module) -> BackboneStages:
    """ResNet, ResNetV1c/V1d, ResNeXt, SE-ResNet, ResNet_CIFAR (mmpretrain) and ResNet, ResNeXt
    (mmdet): one stage per residual layer (``layer1`` ... ``layer4``)."""
    layers = tuple(cast(List[str], backbone.res_layers))  # the residual layers' names
    out_indices = [index % len(layers) for index in cast(Sequence[int], backbone.out_indices)]
    return BackboneStages(stages=tuple((name, ) for name in layers),
                          output_stages=_outputs_at_stage_ends(
                              out_indices, tuple(range(len(layers))), type(backbone).__name__))


MOBILENET_V2_STAGE_ENDS = (1, 2, 4, 7)


@register_stage_splitter('mmpretrain.models.backbones.mobilenet_v2.MobileNetV2')
def split_mobilenet_v2(backbone: nn.Module) -> BackboneStages:
    """MobileNetV2 (mmpretrain): four stages ending where ResNet's do, at strides 4, 8, 16, 32:
    (layer1, layer2), (layer3), (layer4, layer5), (layer6, layer7, conv2)."""
    layers = tuple(cast(List[str], backbone.layers))  # layer1 ... layer7, conv2
    starts = (0, ) + tuple(end + 1 for end in MOBILENET_V2_STAGE_ENDS[:-1])
    stages = tuple(layers[start:end + 1]
                   for start, end in zip(starts, MOBILENET_V2_STAGE_ENDS))
    return BackboneStages(stages=stages,
                          output_stages=_outputs_at_stage_ends(
                              tuple(cast(Sequence[int], backbone.out_indices)),
                              MOBILENET_V2_STAGE_ENDS, 'MobileNetV2'))
