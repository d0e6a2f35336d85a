"""Read mmengine's scalar logs (``<work_dir>/<timestamp>/vis_data/scalars.json``) per epoch."""
import fnmatch
import glob
import json
import os.path as osp
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

NOT_LOSSES = ('lr', 'time', 'data_time', 'epoch', 'iter', 'step', 'memory')


@dataclass
class EpochCurves:
    """One run's curves, indexed by epoch.

    Attributes:
        losses: Loss key (``loss``, ``student.loss``, ``distill.loss_kd``, ...) -> epoch -> mean
            of the values logged in that epoch.
        metrics: Validation metric (``accuracy/top1``, ``coco/bbox_mAP``, ...) -> epoch -> value.
    """
    losses: Dict[str, Dict[int, float]] = field(default_factory=dict)
    metrics: Dict[str, Dict[int, float]] = field(default_factory=dict)


def find_scalar_log(run: str) -> str:
    """The scalar log of a work dir (its latest timestamped run), or ``run`` itself if it is a
    file.

    Raises:
        FileNotFoundError: no ``scalars.json`` under ``run``.
    """
    if osp.isfile(run):
        return run
    logs = sorted(glob.glob(osp.join(run, '*', 'vis_data', 'scalars.json')))
    if not logs:
        raise FileNotFoundError(f'{run}: no <timestamp>/vis_data/scalars.json in this work dir')
    return logs[-1]


def read_epoch_curves(run: str) -> EpochCurves:
    """Per-epoch training losses and validation metrics of an epoch-based run.

    Training lines carry ``epoch``; validation lines carry no ``epoch`` and their ``step`` is
    the epoch just finished (mmengine's epoch-based loop).

    Args:
        run: A work dir or a ``scalars.json`` file.
    """
    sums: Dict[str, Dict[int, List[float]]] = defaultdict(lambda: defaultdict(list))
    curves = EpochCurves()
    with open(find_scalar_log(run)) as file:
        for line in file:
            record = json.loads(line)
            if 'epoch' in record:
                for key, value in record.items():
                    if 'loss' in key and key not in NOT_LOSSES:
                        sums[key][record['epoch']].append(value)
            else:
                for key, value in record.items():
                    if key not in NOT_LOSSES:
                        curves.metrics.setdefault(key, {})[record['step']] = value
    curves.losses = {key: {epoch: sum(values) / len(values) for epoch, values in sorted(
        by_epoch.items())} for key, by_epoch in sums.items()}
    return curves


def select_keys(curves: EpochCurves, patterns: Sequence[str]) -> EpochCurves:
    """The curves whose key matches one of the fnmatch ``patterns`` (e.g. ``'distill.*'``)."""

    def keep(key: str) -> bool:
        return any(fnmatch.fnmatch(key, pattern) for pattern in patterns)

    return EpochCurves(losses={k: v for k, v in curves.losses.items() if keep(k)},
                       metrics={k: v for k, v in curves.metrics.items() if keep(k)})
