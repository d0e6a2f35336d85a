"""Let the stock OpenMMLab distributed launch work on machines without GPUs, and end cleanly."""
import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> Config:
    """On a CPU-only machine launched with ``--launcher pytorch``: start a gloo process group and
    configure DDP for CPU modules.

    mmengine's own set-up assumes GPUs: it calls ``torch.cuda.set_device`` before creating the
    process group, and gives DDP ``device_ids=[LOCAL_RANK]``, which torch refuses for CPU
    modules. The Runner skips its own set-up when a process group exists. With
    ``launcher='none'`` or a GPU present, nothing is changed.

    Args:
        cfg: The run's config; ``launcher`` must already be set.

    Returns:
        The config, with ``model_wrapper_cfg`` set for CPU DDP when it applies.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return cfg
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')  # rank and world size from torchrun's env
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    return cfg


def shutdown_distributed() -> None:
    """Wait for every rank, then destroy the process group, if one exists.

    A process that exits with a gloo group alive can abort at interpreter shutdown
    ("terminate called without an active exception", SIGABRT), failing a run that finished.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
