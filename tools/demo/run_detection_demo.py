"""The detection demo: distilling a RetinaNet on a generated COCO-format dataset of shapes.

Trains, through ``tools/train.py`` and the configs in ``configs/demo/det/`` (all inheriting
mmdet's stock RetinaNet R18 config, trained from scratch), on 64x64 images with one shape each:
  * a teacher (R18 backbone, 64-channel FPN and head) on 600 images;
  * a student baseline (quarter-width R18) on only 100 images, with its labels alone, at the
    students' schedule (108 epochs) and at 1.5 x it (162 epochs), to check whether the baseline
    has converged;
  * the same student distilled with KD (binary KL on the sigmoid scores), with DIST (the
    authors' RetinaNet recipe) and block-wise (learned stage connectors, DIST as the distance;
    the two late hybrids N_3 and N_4, or with ``--all-hybrids`` also the paper's form with all
    four), at the students' schedule (SGD),
each student over several seeds (the teacher trains alongside the baselines), then prints
teacher / baseline / distilled bbox mAP from mmdet's ``CocoMetric`` (pycocotools) on 150
held-out images, each method's gain over the baseline at the same schedule and at 1.5 x it and
whether it exceeds the seed spread, and writes ``<work-dir>/results.md`` and ``results.json``.
The first distilled student's exported checkpoint is re-evaluated with ``tools/test.py`` on the
stock student config. Last, the teacher and the first seed's students are compared by
``tools/analysis/compare.py``, and the training curves of every run over all seeds drawn by
``tools/analysis/plot_curves.py``, into ``<work-dir>/report``.

With ``--family dino`` (run by hand: 95 minutes on 2 cores, measured), the same for a
DETR-family pair: DINO R18 teaching DINO with a quarter-width R18 (baseline, KD and block-wise;
``configs/demo/det/*dino*``). ``--reuse-finished`` continues an interrupted run.
"""

import argparse
import json
import os
import os.path as osp
import statistics
import time
import warnings
from typing import Dict, List, NamedTuple

from demo_runs import (REPO_ROOT, mean_and_std, mean_train_seconds, needs_teacher, read_text,
                       retest_exported_student, spread, train_teacher_and_students, write_report)

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
CONFIGS = osp.join('configs', 'demo', 'det')


class DemoFamily(NamedTuple):
    """One detector family's demo: its configs and how the table names its models.

    Attributes:
        teacher_config: The teacher's config (600 images).
        runs: Student run name -> config (100 images): the baselines and the distilled students.
        all_hybrids_runs: Runs added by ``--all-hybrids``.
        teacher_name: The teacher in the table, e.g. ``'RetinaNet R18'``.
        student_name: The student in the table.
        work_dir: The default ``--work-dir``.
    """

    teacher_config: str
    runs: Dict[str, str]
    all_hybrids_runs: Dict[str, str]
    teacher_name: str
    student_name: str
    work_dir: str


RETINANET = DemoFamily(
    teacher_config=osp.join(CONFIGS, 'teacher_retinanet_r18_shapes.py'),
    runs={
        'baseline': osp.join(CONFIGS, 'student_retinanet_r18w16_shapes.py'),
        'baseline-1.5x': osp.join(CONFIGS, 'student_retinanet_r18w16_shapes_1.5x.py'),
        'KD': osp.join(CONFIGS, 'kd_retinanet_r18_retinanet_r18w16_shapes.py'),
        'DIST': osp.join(CONFIGS, 'dist_retinanet_r18_retinanet_r18w16_shapes.py'),
        'block-wise-late': osp.join(CONFIGS,
                                    'blockwise_late_retinanet_r18_retinanet_r18w16_shapes.py'),
    },
    # The paper's form (all four hybrids): about twice block-wise-late's step, over the budget
    # of the default run.
    all_hybrids_runs={
        'block-wise': osp.join(CONFIGS, 'blockwise_retinanet_r18_retinanet_r18w16_shapes.py')},
    teacher_name='RetinaNet R18', student_name='RetinaNet R18/4',
    work_dir='work_dirs/shapes_demo')
# A DETR-family pair, run by hand (beyond the embedded demo's budget): DINO with an R18 backbone
# teaching DINO with a quarter-width one; the distillation points are the teacher's top encoder
# proposals, and the block-wise hybrids decode them too.
DINO = DemoFamily(
    teacher_config=osp.join(CONFIGS, 'teacher_dino_r18_shapes.py'),
    runs={
        'baseline': osp.join(CONFIGS, 'student_dino_r18w16_shapes.py'),
        'baseline-1.5x': osp.join(CONFIGS, 'student_dino_r18w16_shapes_1.5x.py'),
        'KD': osp.join(CONFIGS, 'kd_dino_r18_dino_r18w16_shapes.py'),
        'block-wise-late': osp.join(CONFIGS, 'blockwise_late_dino_r18_dino_r18w16_shapes.py'),
    },
    all_hybrids_runs={
        'block-wise': osp.join(CONFIGS, 'blockwise_dino_r18_dino_r18w16_shapes.py')},
    teacher_name='DINO R18', student_name='DINO R18/4',
    work_dir='work_dirs/shapes_dino_demo')
FAMILIES = {'retinanet': RETINANET, 'dino': DINO}
MAP = 'coco/bbox_mAP'
SPLITS = {'train': 600, 'val': 150, 'train_small': 100}
# 64x64 images with one shape of side 20-48 px each (see write_shapes_coco).
SHAPES = dict(image_size=64, min_size=20, max_size=48, max_objects=1)
CURVE_KEYS = ['loss', 'student.*', 'distill.*', 'cross.*', MAP]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', choices=sorted(FAMILIES), default='retinanet',
                        help='the detector family (retinanet: the embedded demo; dino: a '
                        'DETR-family pair, about 1.5 hours on 2 cores)')
    parser.add_argument('--work-dir', help='default: work_dirs/shapes_demo (retinanet), '
                        'work_dirs/shapes_dino_demo (dino)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--jobs', type=int, default=2,
                        help='trainings run at once (each with one thread)')
    parser.add_argument('--all-hybrids', action='store_true',
                        help='also train block-wise with all four hybrids (the paper\'s form; '
                        'each run about twice a block-wise-late run)')
    parser.add_argument('--reuse-finished', action='store_true',
                        help='read the teacher and the runs that finished in --work-dir before '
                        'instead of training them again (continue an interrupted demo)')
    args = parser.parse_args()
    args.work_dir = args.work_dir or FAMILIES[args.family].work_dir
    return args


def epochs_of(config: str) -> int:
    """The ``train_cfg.max_epochs`` of a config."""
    from mmengine.config import Config
    return Config.fromfile(config).train_cfg.max_epochs


def verdict(method: List[float], baseline: List[float]) -> str:
    """Whether the method's mean exceeds the baseline's by more than the larger of the two seed
    standard deviations (all values in %)."""
    gain = statistics.mean(method) - statistics.mean(baseline)
    margin = max(spread(method), spread(baseline))
    if gain > margin:
        return f'yes (gain {gain:+.1f} > {margin:.1f})'
    return f'**no** (gain {gain:+.1f} <= {margin:.1f})'


def format_table(teacher: float, students: Dict[str, List[float]], runs: Dict[str, str],
                 seeds: List[int], work_dir: str, family: DemoFamily = RETINANET) -> str:
    """The results table (mAP in %) with each distilled student's gain over the baseline at the same
    schedule and at 1.5 x it."""
    baseline = [100 * m for m in students['baseline']]
    longer = [100 * m for m in students['baseline-1.5x']]
    rows = ['| Model | Train images | Epochs | bbox mAP (%) on 150 val images | Per seed | '
            'Beats the baseline by more than the seed spread? | Beats the 1.5x baseline? | '
            'Training time per run (s) |',
            '|---|---|---|---|---|---|---|---|',
            f'| Teacher {family.teacher_name} | 600 | {epochs_of(family.teacher_config)} | '
            f'{100 * teacher:.1f} '
            '| seed 0 | | | |']
    for name, maps in students.items():
        percent = [100 * m for m in maps]
        per_seed = ', '.join(f'{m:.1f}' for m in percent)
        distils = needs_teacher(name)
        rows.append(f'| Student {family.student_name}, {name} | 100 | {epochs_of(runs[name])} | '
                    f'{mean_and_std(percent)} | {per_seed} (seeds {seeds}) | '
                    f'{verdict(percent, baseline) if distils else ""} | '
                    f'{verdict(percent, longer) if distils else ""} | '
                    f'{mean_train_seconds(work_dir, name, seeds):.0f} |')
    return '\n'.join(rows)


def convergence(students: Dict[str, List[float]], runs: Dict[str, str]) -> str:
    """Whether the baseline at 1.5 x the schedule differs from it by less than one seed SD."""
    baseline = [100 * m for m in students['baseline']]
    longer = [100 * m for m in students['baseline-1.5x']]
    difference = statistics.mean(longer) - statistics.mean(baseline)
    converged = abs(difference) < spread(baseline)
    epochs = epochs_of(runs['baseline'])
    return (f'Baseline at {epochs_of(runs["baseline-1.5x"])} vs {epochs} epochs: '
            f'{difference:+.2f} points, {"within" if converged else "**more than**"} one seed '
            f'standard deviation of the baseline ({spread(baseline):.2f}): the baseline '
            f'{"has converged" if converged else "has not converged"} at {epochs} '
            f'epochs (the 1.5 x baseline\'s own seed standard deviation: {spread(longer):.2f}).')


def main() -> None:
    args = parse_args()
    start = time.time()
    os.chdir(REPO_ROOT)
    from mmkd_plugins.testing import write_shapes_coco
    write_shapes_coco('data/shapes', SPLITS, **SHAPES)
    family = FAMILIES[args.family]
    runs = dict(family.runs, **(family.all_hybrids_runs if args.all_hybrids else {}))

    print(f'[demo] training the teacher {family.teacher_name} on 600 images and the students on '
          f'100 ({", ".join(runs)} x seeds {args.seeds}; the distilled ones once the teacher '
          'is trained) ...', flush=True)
    teacher_map, teacher_checkpoint, students = train_teacher_and_students(
        family.teacher_config, runs, args.seeds, args.work_dir, MAP, args.jobs,
        reuse_finished=args.reuse_finished)
    print(f'[demo] teacher bbox mAP: {100 * teacher_map:.1f}', flush=True)
    exported_map = retest_exported_student(osp.join(args.work_dir, 'kd', f'seed{args.seeds[0]}'),
                                           MAP)
    print('[demo] comparing the teacher and the seed-0 students ...', flush=True)
    report_dir = write_report(args.work_dir, runs, args.seeds, family.teacher_config,
                              teacher_checkpoint, CURVE_KEYS, MAP)

    table = format_table(teacher_map, students, runs, args.seeds, args.work_dir, family)
    summary = (f'{table}\n\n{convergence(students, runs)}\n\nTraining times: {args.jobs} runs at '
               f'once, one thread each.\n\nExported KD student '
               f'(seed {args.seeds[0]}) re-tested with tools/test.py on the stock student '
               f'config: bbox mAP {100 * exported_map:.1f}.\n'
               f'\nComparison of the seed-{args.seeds[0]} models (tools/analysis/compare.py; '
               f'figures in {report_dir}):\n\n{read_text(report_dir, "comparison.md")}\n'
               f'Total time: {(time.time() - start) / 60:.1f} min.\n')
    with open(osp.join(args.work_dir, 'results.md'), 'w') as file:
        file.write(summary)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as file:
        json.dump(dict(teacher=teacher_map, students=students, seeds=args.seeds,
                       exported_kd_student=exported_map,
                       train_seconds={name: mean_train_seconds(args.work_dir, name, args.seeds)
                                      for name in students},
                       total_minutes=(time.time() - start) / 60), file, indent=2)
    print('\n' + summary)


if __name__ == '__main__':
    main()
