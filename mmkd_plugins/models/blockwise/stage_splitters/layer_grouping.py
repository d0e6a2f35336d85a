"""How splitters group a backbone's layers into stages."""

from typing import List, Sequence, Tuple, Union

from torch import nn

from ..backbone_stages import BackboneStages

PLAIN_GROUPS = 4


def plain_stage_ends(num_layers: int, out_indices: Sequence[int],
                     groups: int = PLAIN_GROUPS) -> List[int]:
    """The stage ends of a plain token backbone: the last layer of each of ``groups`` equal groups
    of layers (the last layer ends the last stage) and every layer the backbone outputs.

    Args:
        num_layers: The number of layers, L.
        out_indices: The layers whose outputs the backbone returns; a negative index counts
            from the end (-1 is layer L - 1), as the backbones' own ``__init__`` reads it;
            indices outside the layers (ViT accepts L) are never output and are ignored.
        groups: The number of equal groups. Defaults to 4.

    Returns:
        The index of each stage's last layer, increasing.
    """
    ends = {(k + 1) * num_layers // groups - 1 for k in range(groups)}
    for index in out_indices:
        index = index + num_layers if index < 0 else index
        if 0 <= index < num_layers:
            ends.add(index)
    return sorted(end for end in ends if end >= 0)


def plain_stages(prefix: str, num_layers: int,
                 out_indices: Sequence[int]) -> Tuple[Tuple[str, ...], ...]:
    """The stages of a plain backbone whose layers are ``{prefix}.0`` ...

    (see :func:`plain_stage_ends`).
    """
    names = [f'{prefix}.{k}' for k in range(num_layers)]
    return group_into_stages(names, plain_stage_ends(num_layers, out_indices))


def resolution_stage_ends(strides: Sequence[int], num_stages: int = 4) -> List[int]:
    """One stage per resolution: the stage ends where the next layer downsamples; with more than
    ``num_stages`` resolutions, the first ones are merged into the first stage (as ResNet's stage 1
    holds its stride-2 stem).

    Args:
        strides: Each layer's stride.
        num_stages: The most stages. Defaults to 4.
    """
    ends = [k for k in range(len(strides)) if k == len(strides) - 1 or strides[k + 1] > 1]
    return ends[-num_stages:]


def group_into_stages(names: Sequence[str], stage_ends: Sequence[int]) -> Tuple[Tuple[str,
                                                                                       ...], ...]:
    """Group consecutive modules into stages.

    Args:
        names: The modules, in call order.
        stage_ends: The index (into ``names``) of each stage's last module, increasing.
    """
    starts = [0] + [end + 1 for end in stage_ends[:-1]]
    return tuple(tuple(names[start:end + 1]) for start, end in zip(starts, stage_ends))


def check_outputs_at_stage_ends(out_indices: Sequence[int], stage_ends: Sequence[int],
                                backbone_name: str) -> None:
    """Raise a ``ValueError`` if the backbone returns a layer from inside a stage.

    Args:
        out_indices: The layers whose outputs the backbone returns (its own numbering).
        stage_ends: The layer index that ends each stage.
        backbone_name: For the error message.
    """
    inside = sorted(set(out_indices) - set(stage_ends))
    if inside:
        raise ValueError(f'{backbone_name} out_indices {tuple(out_indices)} returns layers '
                         f'{inside} from inside a stage; block-wise distillation needs outputs '
                         f'at stage ends, i.e. out_indices within {tuple(stage_ends)}')


def absolute_indices(out_indices: Union[int, Sequence[int]], num_layers: int) -> List[int]:
    """``out_indices`` as a list with negative indices counted from ``num_layers``."""
    indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
    return [index + num_layers if index < 0 else index for index in indices]


def ends_before_downsampling(strides: Sequence[int], input_stride: int = 1) -> List[int]:
    """The stage ends of a chain of layers with the given strides: every layer after which the
    resolution is at stride 4 or more and the next layer halves it again, and the last layer.

    Args:
        strides: Each layer's stride, in call order.
        input_stride: The stride of the chain's input (a stem before it).
    """
    ends, stride = [], input_stride
    for index, layer_stride in enumerate(strides):
        stride *= layer_stride
        if index + 1 == len(strides) or (strides[index + 1] > 1 and stride >= 4):
            ends.append(index)
    return ends


def module_stride(module: nn.Module) -> int:
    """The total stride of a plain module or a sequential chain (its convs and pools)."""
    stride = 1
    for submodule in module.modules():
        if isinstance(submodule, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            value = submodule.stride if submodule.stride is not None else submodule.kernel_size
            stride *= value[0] if isinstance(value, (tuple, list)) else value
    return stride


def split_layer_chain(names: Sequence[str], strides: Sequence[int], out_indices: Sequence[int],
                      backbone_name: str) -> BackboneStages:
    """Split a backbone whose forward runs ``names`` one after another and returns some of their
    outputs (``out_indices``, numbered like ``names``); ``names[0]`` is a stem that only the next
    layer reads."""
    ends = ends_before_downsampling(strides)
    check_outputs_at_stage_ends(absolute_indices(out_indices, len(names)), ends, backbone_name)
    return BackboneStages(stages=group_into_stages(names[1:], [end - 1 for end in ends]),
                          stem=(names[0], ))
