"""The demos' scheduling of runs and the detection demo's verdicts (``tools/demo``)."""

import os
import os.path as osp
import sys
import threading
import time

import pytest

TOOLS_DEMO = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
                      'demo')
sys.path.insert(0, TOOLS_DEMO)
import demo_runs  # noqa: E402
import run_detection_demo  # noqa: E402


def test_baselines_train_beside_the_teacher_and_students_start_after_it(tmp_path, monkeypatch):
    """One pool: the baseline runs while the teacher does, each distillation run only once the
    teacher's checkpoint is there and with that checkpoint; every seed's result comes back."""
    events = []
    lock = threading.Lock()

    def record_train(config, work_dir, seed, metric, *options):
        with lock:
            events.append(('start', config, seed, options, time.perf_counter()))
        time.sleep(0.3 if config == 'teacher.py' else 0.05)
        os.makedirs(work_dir, exist_ok=True)
        open(osp.join(work_dir, 'epoch_1.pth'), 'w').close()
        with lock:
            events.append(('end', config, seed, options, time.perf_counter()))
        return {'teacher.py': 0.9, 'student.py': 0.5, 'kd.py': 0.7}[config] + seed / 100

    monkeypatch.setattr(demo_runs, 'train', record_train)
    runs = {'KD': 'kd.py', 'baseline': 'student.py'}
    teacher, checkpoint, results = demo_runs.train_teacher_and_students(
        'teacher.py', runs, [0, 1], str(tmp_path), 'metric', 2)

    assert (teacher, results) == (0.9, {'KD': [0.7, 0.71], 'baseline': [0.5, 0.51]})
    assert checkpoint == osp.join(str(tmp_path), 'teacher.pth') and osp.isfile(checkpoint)
    teacher_end = next(t for kind, config, *_, t in events
                       if kind == 'end' and config == 'teacher.py')
    starts = {(config, seed): (options, t) for kind, config, seed, options, t in events
              if kind == 'start'}
    assert starts['student.py', 0][1] < teacher_end  # the baseline did not wait
    for seed in (0, 1):
        options, started = starts['kd.py', seed]
        assert started >= teacher_end
        assert f'model.teacher.checkpoint={checkpoint}' in options
        assert not any('teacher' in option for option in starts['student.py', seed][0])
        assert osp.isfile(osp.join(demo_runs.run_dir_of(str(tmp_path), 'KD', seed),
                                   'train_seconds.txt'))


def test_a_run_is_a_baseline_by_its_name():
    assert not demo_runs.needs_teacher('baseline')
    assert not demo_runs.needs_teacher('baseline-1.5x')
    assert demo_runs.needs_teacher('KD') and demo_runs.needs_teacher('block-wise')


@pytest.mark.parametrize('method, expected', [
    ([90.0, 92.0, 94.0], 'yes (gain +5.0 > 2.0)'),  # mean 92, SD 2; baseline mean 87, SD 1
    ([87.0, 89.0, 91.0], '**no** (gain +2.0 <= 2.0)'),  # a gain equal to the spread is not more
    ([85.0, 86.0, 87.0], '**no** (gain -1.0 <= 1.0)'),
])
def test_the_verdict_compares_the_gain_with_the_larger_seed_spread(method, expected):
    assert run_detection_demo.verdict(method, [86.0, 87.0, 88.0]) == expected


def test_the_convergence_line_reads_the_schedules_from_the_configs(monkeypatch):
    monkeypatch.chdir(demo_runs.REPO_ROOT)
    runs = run_detection_demo.RETINANET.runs
    converged = run_detection_demo.convergence(
        {'baseline': [0.86, 0.87, 0.88], 'baseline-1.5x': [0.875, 0.875, 0.875]}, runs)
    assert converged.startswith('Baseline at 162 vs 108 epochs: +0.50 points, within one seed')
    assert 'has converged at 108 epochs' in converged
    not_converged = run_detection_demo.convergence(
        {'baseline': [0.86, 0.87, 0.88], 'baseline-1.5x': [0.89, 0.89, 0.89]}, runs)
    assert '+2.00 points, **more than** one seed' in not_converged
    assert 'has not converged' in not_converged


def test_the_table_judges_each_method_against_both_baseline_schedules(tmp_path, monkeypatch):
    """A distilled row gets two verdicts: against the baseline at its schedule and against the
    baseline at 1.5 x it; baseline rows get none; epochs come from each run's config."""
    monkeypatch.chdir(demo_runs.REPO_ROOT)
    runs = {name: run_detection_demo.RETINANET.runs[name]
            for name in ('baseline', 'baseline-1.5x', 'KD')}
    students = {'baseline': [0.86, 0.87, 0.88], 'baseline-1.5x': [0.88, 0.89, 0.90],
                'KD': [0.89, 0.90, 0.91]}
    for name in runs:
        for seed in (0, 1, 2):
            run_dir = demo_runs.run_dir_of(str(tmp_path), name, seed)
            os.makedirs(run_dir)
            with open(osp.join(run_dir, 'train_seconds.txt'), 'w') as file:
                file.write(f'{100 + seed}\n')
    rows = run_detection_demo.format_table(0.95, students, runs, [0, 1, 2],
                                           str(tmp_path)).splitlines()
    kd = next(row for row in rows if ', KD |' in row)
    assert '| 108 | 90.00 ± 1.00 |' in kd
    assert '| yes (gain +3.0 > 1.0) | **no** (gain +1.0 <= 1.0) | 101 |' in kd
    longer = next(row for row in rows if 'baseline-1.5x' in row)
    assert '| 162 |' in longer and '|  |  | 101 |' in longer


def test_finished_runs_are_read_not_trained_again_when_asked(tmp_path, monkeypatch):
    """``reuse_finished``: the teacher (its ``teacher.pth``) and a run that finished (its
    ``train_seconds.txt``) are read from their logs; an unfinished run trains."""
    trained = []

    def record_train(config, work_dir, seed, metric, *options):
        trained.append((config, seed))
        os.makedirs(work_dir, exist_ok=True)
        open(osp.join(work_dir, 'epoch_1.pth'), 'w').close()
        return 0.5

    def write_log(run_dir: str, value: float) -> None:
        os.makedirs(osp.join(run_dir, '20261208_000000', 'vis_data'))
        with open(osp.join(run_dir, '20261208_000000', 'vis_data', 'scalars.json'), 'w') as file:
            file.write(f'{{"metric": {value}, "step": 1}}\n')

    monkeypatch.setattr(demo_runs, 'train', record_train)
    write_log(osp.join(str(tmp_path), 'teacher'), 0.9)
    open(osp.join(str(tmp_path), 'teacher.pth'), 'w').close()
    finished = demo_runs.run_dir_of(str(tmp_path), 'KD', 0)
    write_log(finished, 0.7)
    with open(osp.join(finished, 'train_seconds.txt'), 'w') as file:
        file.write('100\n')

    teacher, _, results = demo_runs.train_teacher_and_students(
        'teacher.py', {'KD': 'kd.py'}, [0, 1], str(tmp_path), 'metric', 2, reuse_finished=True)
    assert (teacher, results) == (0.9, {'KD': [0.7, 0.5]})
    assert trained == [('kd.py', 1)]
