"""Let the stock OpenMMLab distributed launches (torchrun, Slurm) work on machines without GPUs, and
end cleanly."""

import os
import subprocess

import torch
import torch.distributed as dist
from mmengine.config import Config


def slurm_process_environment() -> None:
    """Set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` from a
    Slurm task's environment, as mmengine's Slurm set-up does: the first host of ``SLURM_NODELIST``
    (``scontrol show hostnames``) unless ``MASTER_ADDR`` is set, port ``MASTER_PORT`` or 29500.

    Raises:
        RuntimeError: not inside a Slurm task (``srun``), naming the missing variables.
    """
    missing = [name for name in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
               if name not in os.environ]
    if missing:
        raise RuntimeError(f'launcher=slurm: {", ".join(missing)} not set; start the job '
                           'with srun (tools/slurm_train.sh)')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if 'MASTER_ADDR' not in os.environ:
        hosts = subprocess.run(['scontrol', 'show', 'hostnames', os.environ['SLURM_NODELIST']],
                               capture_output=True, text=True, check=True).stdout.split()
        os.environ['MASTER_ADDR'] = hosts[0]
    os.environ.setdefault('MASTER_PORT', '29500')


def setup_cpu_distributed(cfg: Config) -> Config:
    """On a CPU-only machine launched with ``--launcher pytorch`` or ``slurm``: start a gloo process
    group and configure DDP for CPU modules.

    mmengine's own set-up assumes GPUs: it calls ``torch.cuda.set_device`` before creating the
    process group, and gives DDP ``device_ids=[LOCAL_RANK]``, which torch refuses for CPU
    modules. The Runner skips its own set-up when a process group exists. With
    ``launcher='none'`` or ``'mpi'``, or a GPU present, nothing is changed.

    Args:
        cfg: The run's config; ``launcher`` must already be set.

    Returns:
        The config, with ``model_wrapper_cfg`` set for CPU DDP when it applies.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available():
        return cfg
    if not dist.is_initialized():
        if launcher == 'slurm':
            slurm_process_environment()
        dist.init_process_group(backend='gloo')  # rank and world size from the environment
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    return cfg


def shutdown_distributed() -> None:
    """Wait for every rank, then destroy the process group, if one exists.

    A process that exits with a gloo group alive can abort at interpreter shutdown ("terminate
    called without an active exception", SIGABRT), failing a run that finished.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
