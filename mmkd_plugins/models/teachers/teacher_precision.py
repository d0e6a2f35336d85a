"""A teacher forward in bfloat16 (autocast) whose outputs the losses get in float32."""
from typing import Any

import torch


def bf16_autocast(device_type: str, enabled: bool = True) -> torch.autocast:
    """Autocast to bfloat16 on ``device_type`` (``'cpu'`` or ``'cuda'``): convolutions and
    matrix products run in bf16, the weights stay in float32. A no-op when not ``enabled``."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled)


def to_float32(outputs: Any) -> Any:
    """``outputs`` (a tensor, or lists, tuples and dicts of them) with every floating-point
    tensor as float32; other values unchanged."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(to_float32(item) for item in outputs)
    if isinstance(outputs, dict):
        return {key: to_float32(value) for key, value in outputs.items()}
    return outputs


def check_bf16_supported(field: str) -> None:
    """Refuse a bf16 teacher on a GPU without bfloat16 (before Ampere), at build time.

    Args:
        field: The option's place in the config, for the message.

    Raises:
        ValueError: a CUDA device is present and does not support bfloat16.
    """
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise ValueError(f'{field}: {torch.cuda.get_device_name()} has no bfloat16 support; '
                         'leave the teacher in float32 (bf16=False)')
