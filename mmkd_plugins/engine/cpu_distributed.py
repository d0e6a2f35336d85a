"""Let the stock OpenMMLab distributed launch work on machines without GPUs."""
import torch
from mmengine.config import Config


def adapt_to_cpu_distributed(cfg: Config) -> Config:
    """On a CPU-only machine, make a distributed launch use gloo and CPU-compatible DDP.

    mmengine's defaults assume GPUs: the ``nccl`` backend, and DDP given
    ``device_ids=[LOCAL_RANK]``, which torch refuses for CPU modules. With ``launcher='none'``
    or a GPU present, the config is returned unchanged.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return cfg
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    return cfg
