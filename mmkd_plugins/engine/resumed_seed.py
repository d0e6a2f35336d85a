"""The seed of the run being resumed, for configs that leave the seed random."""

from typing import Optional

from mmengine.config import Config
from mmengine.runner.checkpoint import find_latest_checkpoint

from mmkd_plugins.checkpoint import safe_torch_load


def seed_of_resumed_run(cfg: Config) -> Optional[int]:
    """The seed that the interrupted run drew, when ``cfg`` resumes it with ``randomness.seed=None``
    (mmpretrain's and mmdet's default); else None.

    mmengine draws a new seed for the resumed run and builds its samplers and data-loader
    workers with it before reading the checkpoint's seed, so the data order after a resume
    differs from the uninterrupted run's. Building the resumed run with the interrupted run's
    seed makes it the same run.

    Args:
        cfg: The merged config (``resume``, ``load_from``, ``work_dir`` and ``randomness``).

    Returns:
        The ``meta['seed']`` of the checkpoint that will be resumed (``load_from``, or the
        latest one recorded in the work dir), or None when there is nothing to do.
    """
    if not cfg.get('resume') or (cfg.get('randomness') or {}).get('seed') is not None:
        return None
    checkpoint = cfg.get('load_from') or find_latest_checkpoint(cfg.work_dir)
    if not checkpoint or '://' in checkpoint:  # nothing saved yet, or not a local file
        return None
    meta = safe_torch_load(checkpoint, map_location='cpu', mmap=True).get('meta', {})
    return meta.get('seed')
