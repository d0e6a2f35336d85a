"""Read mmengine's scalar logs (``<work_dir>/<timestamp>/vis_data/scalars.json``) per epoch."""

import fnmatch
import glob
import json
import os.path as osp
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np

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
    """The scalar log of a work dir (its latest timestamped run), or ``run`` itself if it is a file.

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


def as_student_terms(curves: EpochCurves) -> EpochCurves:
    """An undistilled run's loss terms under the names a distiller logs them with.

    A distiller logs the student's own terms as ``student.<term>``; a baseline trained without a
    teacher logs the same terms as ``<term>``. Renaming puts the baseline into the same panels
    (``loss_cls`` -> ``student.loss_cls``; the total ``loss`` keeps its name). A run that already
    logs ``student.*`` or ``distill.*`` terms is returned unchanged.
    """
    if any(key.startswith(('student.', 'distill.')) for key in curves.losses):
        return curves
    return EpochCurves(
        losses={key if key == 'loss' else f'student.{key}': series
                for key, series in curves.losses.items()},
        metrics=dict(curves.metrics))


@dataclass
class CurveBand:
    """One curve over several runs of a setting (its seeds).

    Attributes:
        epochs: The epochs every run logged, ascending.
        mean: Per epoch, the mean over the runs.
        low: Per epoch, the smallest run's value.
        high: Per epoch, the largest run's value.
    """

    epochs: List[int]
    mean: List[float]
    low: List[float]
    high: List[float]


def curve_bands(runs: Sequence[EpochCurves]) -> Dict[str, CurveBand]:
    """Per loss term and metric, the band of several runs over the epochs they all logged.

    Args:
        runs: The curves of one setting's runs (e.g. its seeds); keys missing from any run and
            epochs missing from any run are left out.

    Returns:
        Key -> its :class:`CurveBand`.
    """
    bands = {}
    for kind in ('losses', 'metrics'):
        series = [getattr(run, kind) for run in runs]
        for key in set.intersection(*(set(s) for s in series)):
            epochs = sorted(set.intersection(*(set(s[key]) for s in series)))
            if not epochs:
                continue
            values = np.array([[s[key][epoch] for epoch in epochs] for s in series])
            bands[key] = CurveBand(epochs, values.mean(0).tolist(), values.min(0).tolist(),
                                   values.max(0).tolist())
    return bands
