"""Running the repository's tools from the demo scripts and reading their logs."""

import glob
import json
import os
import os.path as osp
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_tool(script: str, *args: str) -> None:
    """Run ``tools/<script>`` from the repository root with one thread; raise on failure."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    command = [sys.executable, osp.join('tools', script), *args]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-2000:] + result.stderr[-4000:])
        raise RuntimeError(f'failed: {" ".join(command)}')


def last_logged(work_dir: str, key: str) -> float:
    """The last value of ``key`` in the run's scalar log (e.g. the final validation metric)."""
    log = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
    with open(log) as file:
        lines = [json.loads(line) for line in file if f'"{key}"' in line]
    return lines[-1][key]


def train(config: str, work_dir: str, seed: int, metric: str, *options: str) -> float:
    """Run tools/train.py with ``seed`` and config overrides; return the final ``metric``."""
    run_tool('train.py', config, '--work-dir', work_dir, '--cfg-options',
             f'randomness.seed={seed}', *options)
    return last_logged(work_dir, metric)


def spread(values: List[float]) -> float:
    """The sample standard deviation (0 for one value)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def mean_and_std(values: List[float]) -> str:
    """``'mean ± sample std'`` with two decimals."""
    return f'{statistics.mean(values):.2f} ± {spread(values):.2f}'


def train_teacher(config: str, work_dir: str, metric: str, *options: str,
                  reuse_finished: bool = False) -> Tuple[float, str]:
    """Train the teacher (seed 0) and copy its final checkpoint to ``<work_dir>/teacher.pth``.

    Args:
        reuse_finished: Whether a teacher already there (its ``teacher.pth``) is read rather
            than trained again (continuing an interrupted demo).

    Returns:
        The teacher's final ``metric`` and the path of its checkpoint.
    """
    teacher_dir = osp.join(work_dir, 'teacher')
    checkpoint = osp.join(work_dir, 'teacher.pth')
    if reuse_finished and osp.isfile(checkpoint):
        return last_logged(teacher_dir, metric), checkpoint
    if osp.isfile(checkpoint):  # a teacher trained again is finished only once it has ended
        os.remove(checkpoint)
    result = train(config, teacher_dir, 0, metric, *options)
    shutil.copy(sorted(glob.glob(osp.join(teacher_dir, 'epoch_*.pth')))[-1], checkpoint)
    return result, checkpoint


def needs_teacher(name: str) -> bool:
    """Whether the demo run ``name`` distils: every run but those named ``baseline...``."""
    return not name.startswith('baseline')


def _train_student(runs: Dict[str, str], work_dir: str, metric: str, teacher_checkpoint: str,
                   options: Sequence[str], run_options: Optional[Dict[str, List[str]]],
                   name: str, seed: int, reuse_finished: bool = False) -> float:
    """Train one (run, seed) pair (see :func:`train_students`); return its final ``metric``.

    With ``reuse_finished``, a run that finished before (its ``train_seconds.txt`` is written last)
    is read rather than trained again.
    """
    run_dir = run_dir_of(work_dir, name, seed)
    finished = osp.join(run_dir, 'train_seconds.txt')
    if reuse_finished and osp.isfile(finished):
        result = last_logged(run_dir, metric)
        print(f'[demo]   {name:12s} seed {seed}: {metric} {result:.4f} (finished before)',
              flush=True)
        return result
    if osp.isfile(finished):  # a run trained again is finished only once it has ended
        os.remove(finished)
    teacher = [f'model.teacher.checkpoint={teacher_checkpoint}'] if needs_teacher(name) else []
    start = time.perf_counter()
    result = train(runs[name], run_dir, seed, metric, *teacher, *options,
                   *(run_options or {}).get(name, []))
    with open(osp.join(run_dir, 'train_seconds.txt'), 'w') as file:
        file.write(f'{time.perf_counter() - start:.1f}\n')
    print(f'[demo]   {name:12s} seed {seed}: {metric} {result:.4f}', flush=True)
    return result


def train_students(runs: Dict[str, str], seeds: List[int], work_dir: str, metric: str,
                   teacher_checkpoint: str, jobs: int, *options: str,
                   run_options: Optional[Dict[str, List[str]]] = None) -> Dict[str, List[float]]:
    """Train every (run, seed) pair, ``jobs`` at a time; distillation runs get the teacher.

    Each run's wall-clock seconds go to ``<run dir>/train_seconds.txt`` (see
    :func:`mean_train_seconds`).

    Args:
        runs: Name -> config; runs named ``baseline...`` get no teacher (:func:`needs_teacher`).
        seeds: Seeds of each run.
        work_dir: ``<work_dir>/<name>/seed<seed>`` holds each run.
        metric: The logged metric to return.
        teacher_checkpoint: Passed as ``model.teacher.checkpoint`` to distillation runs.
        jobs: Trainings at once.
        options: Further config overrides for every run.
        run_options: Name -> config overrides of that run only.

    Returns:
        Name -> the final ``metric`` of each seed, in the order of ``seeds``.
    """
    pairs = [(name, seed) for seed in seeds for name in runs]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(
            lambda pair: _train_student(runs, work_dir, metric, teacher_checkpoint, options,
                                        run_options, *pair), pairs))
    return {name: [r for (n, _), r in zip(pairs, results) if n == name] for name in runs}


def train_teacher_and_students(teacher_config: str, runs: Dict[str, str], seeds: List[int],
                               work_dir: str, metric: str, jobs: int, *options: str,
                               reuse_finished: bool = False
                               ) -> Tuple[float, str, Dict[str, List[float]]]:
    """:func:`train_teacher` and :func:`train_students` in one pool of ``jobs`` trainings: the
    baselines, which need no teacher, train while the teacher does, and each distillation run starts
    once the teacher's checkpoint is there.

    Args:
        teacher_config: The teacher's config (trained with seed 0).
        runs: As for :func:`train_students`.
        seeds: Seeds of each student run.
        work_dir: Holds ``teacher/``, ``teacher.pth`` and ``<name>/seed<seed>`` of each run.
        metric: The logged metric to return.
        jobs: Trainings at once.
        options: Further config overrides for every run, the teacher's included.
        reuse_finished: Whether the teacher and the runs that finished in ``work_dir`` before
            are read rather than trained again (continuing an interrupted demo).

    Returns:
        The teacher's final ``metric``, its checkpoint, and name -> the final ``metric`` of each
        seed, in the order of ``seeds``.
    """
    pairs = sorted(((name, seed) for seed in seeds for name in runs),
                   key=lambda pair: needs_teacher(pair[0]))  # baselines first, order kept
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        teacher = pool.submit(train_teacher, teacher_config, work_dir, metric, *options,
                              reuse_finished=reuse_finished)

        def train_one(name: str, seed: int) -> float:
            checkpoint = teacher.result()[1] if needs_teacher(name) else ''
            return _train_student(runs, work_dir, metric, checkpoint, options, None, name, seed,
                                  reuse_finished)

        futures = [pool.submit(train_one, *pair) for pair in pairs]
        results = {pair: future.result() for pair, future in zip(pairs, futures)}
    teacher_result, checkpoint = teacher.result()
    return teacher_result, checkpoint, {
        name: [results[name, seed] for seed in seeds] for name in runs}


def run_dir_of(work_dir: str, name: str, seed: int) -> str:
    """Where a demo run of ``name`` with ``seed`` lives."""
    return osp.join(work_dir, name.lower(), f'seed{seed}')


def mean_train_seconds(work_dir: str, name: str, seeds: List[int]) -> float:
    """The mean wall-clock training time of a run's seeds (written by :func:`train_students`)."""
    seconds = []
    for seed in seeds:
        with open(osp.join(run_dir_of(work_dir, name, seed), 'train_seconds.txt')) as file:
            seconds.append(float(file.read()))
    return statistics.mean(seconds)


def retest_exported_student(run_dir: str, metric: str, *options: str) -> float:
    """Evaluate ``student_final.pth`` with ``tools/test.py`` on the exported student config."""
    metrics_file = osp.join(run_dir, 'stock_test_metrics.json')
    run_tool('test.py', osp.join(run_dir, 'student_config.py'),
             osp.join(run_dir, 'student_final.pth'), '--work-dir', run_dir, '--out',
             metrics_file, *(['--cfg-options', *options] if options else []))
    with open(metrics_file) as file:
        return json.load(file)[metric]


def latest_checkpoint(run_dir: str) -> str:
    """The run's last ``epoch_*.pth``."""
    return max(glob.glob(osp.join(run_dir, 'epoch_*.pth')),
               key=lambda path: int(path.rsplit('_', 1)[1].split('.')[0]))


def write_report(work_dir: str, runs: Dict[str, str], seeds: List[int], teacher_config: str,
                 teacher_checkpoint: str, curve_keys: List[str], metric: str,
                 *options: str) -> str:
    """The demo's report in ``<work_dir>/report``: the teacher and every run of the first seed
    compared by ``tools/analysis/compare.py`` (each distilled student as exported, each baseline
    from its last checkpoint), and the training curves of every run over all ``seeds`` (mean and
    lowest-to-highest band per run) drawn by ``tools/analysis/plot_curves.py``: every ``curve_keys``
    panel in ``curves.png``, the validation ``metric`` alone in ``metric_curves.png``.

    Returns:
        The report folder.
    """
    report_dir = osp.join(work_dir, 'report')
    run_dirs = {name: run_dir_of(work_dir, name, seeds[0]) for name in runs}
    models = [(teacher_config, teacher_checkpoint, 'teacher')]
    for name, run_dir in run_dirs.items():
        if not needs_teacher(name):
            models.append((runs[name], latest_checkpoint(run_dir), name))
        else:
            models.append((osp.join(run_dir, 'student_config.py'),
                           osp.join(run_dir, 'student_final.pth'), name))
    run_tool(osp.join('analysis', 'compare.py'),
             *[arg for model in models for arg in ('--model', *model)], '--out', report_dir,
             *(['--cfg-options', *options] if options else []))
    every_seed = [f'{run_dir_of(work_dir, name, seed)}:{name}' for name in runs for seed in seeds]
    for figure, keys in (('curves.png', curve_keys), ('metric_curves.png', [metric])):
        run_tool(osp.join('analysis', 'plot_curves.py'), *every_seed,
                 '--out', osp.join(report_dir, figure), '--keys', *keys)
    return report_dir


def read_text(folder: str, name: str) -> str:
    """The contents of ``<folder>/<name>``."""
    with open(osp.join(folder, name)) as file:
        return file.read()
