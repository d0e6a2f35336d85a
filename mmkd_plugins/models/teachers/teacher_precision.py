"""A teacher forward in bfloat16 (autocast) whose outputs the losses get in float32."""

import contextlib
from typing import Any, ContextManager

import torch


def bf16_autocast(device_type: str, enabled: bool = True) -> ContextManager:
    """Autocast to bfloat16 on ``device_type`` (``'cpu'`` or ``'cuda'``): convolutions and matrix
    products run in bf16, the weights stay in float32.

    When not ``enabled`` it changes nothing: an enclosing autocast (mixed-precision training,
    ``--amp``) stays in force, so the teacher runs in the student's precision. (An autocast with
    ``enabled=False`` would switch an enclosing one off.)
    """
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


def to_float32(outputs: Any) -> Any:
    """``outputs`` (a tensor, or lists, tuples and dicts of them) with every floating-point tensor
    as float32; other values unchanged."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(to_float32(item) for item in outputs)
    if isinstance(outputs, dict):
        return {key: to_float32(value) for key, value in outputs.items()}
    return outputs


def check_bf16_supported(field: str) -> None:
    """Refuse a bf16 teacher on a GPU without native bfloat16 (before Ampere), at build time.

    Such GPUs can emulate bfloat16 (and ``torch.cuda.is_bf16_supported()`` counts that by
    default), but emulated bf16 is slower than float32: only native support is accepted.

    Args:
        field: The option's place in the config, for the message.

    Raises:
        ValueError: a CUDA device is present and does not support bfloat16.
    """
    if not torch.cuda.is_available():
        return
    if not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ValueError(f'{field}: {torch.cuda.get_device_name()} has no bfloat16 support; '
                         'leave the teacher in float32 (bf16=False)')
