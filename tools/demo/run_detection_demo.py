"""The detection demo: distilling a RetinaNet on a generated COCO-format dataset of shapes.

Trains, through ``tools/train.py`` and the configs in ``configs/demo/det/`` (all inheriting
mmdet's stock RetinaNet R18 config, trained from scratch):
  * a teacher (R18 backbone, 64-channel FPN and head) on 600 images;
  * a student baseline (quarter-width R18) on only 100 images, with its labels alone;
  * the same student distilled with KD (binary KL on the sigmoid scores), with DIST (the
    authors' RetinaNet recipe) and block-wise (hybrids with learned stage connectors, DIST as
    the distance),
each student over several seeds, then prints teacher / baseline / distilled bbox mAP from
mmdet's ``CocoMetric`` (pycocotools) on 150 held-out images and writes
``<work-dir>/results.md``. The first distilled student's exported checkpoint is re-evaluated
with ``tools/test.py`` on the stock student config. Last, the teacher and the first seed's
students are compared by ``tools/analysis/compare.py``, and the training curves of every run
over all seeds drawn by ``tools/analysis/plot_curves.py``, into ``<work-dir>/report``.
"""
import argparse
import os
import os.path as osp
import time
import warnings
from typing import Dict, List

from demo_runs import (REPO_ROOT, mean_and_std, read_text, retest_exported_student,
                       train_students, train_teacher, write_report)

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
CONFIGS = osp.join('configs', 'demo', 'det')
TEACHER_CONFIG = osp.join(CONFIGS, 'teacher_retinanet_r18_shapes.py')
STUDENT_RUNS = {
    'baseline': osp.join(CONFIGS, 'student_retinanet_r18w16_shapes.py'),
    'KD': osp.join(CONFIGS, 'kd_retinanet_r18_retinanet_r18w16_shapes.py'),
    'DIST': osp.join(CONFIGS, 'dist_retinanet_r18_retinanet_r18w16_shapes.py'),
    'block-wise': osp.join(CONFIGS, 'blockwise_retinanet_r18_retinanet_r18w16_shapes.py'),
}
MAP = 'coco/bbox_mAP'
SPLITS = {'train': 600, 'val': 150, 'train_small': 100}
CURVE_KEYS = ['loss', 'student.*', 'distill.*', 'cross.*', MAP]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/shapes_demo')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--jobs', type=int, default=2,
                        help='trainings run at once (each with one thread)')
    return parser.parse_args()


def format_table(teacher: float, students: Dict[str, List[float]], seeds: List[int]) -> str:
    rows = ['| Model | Train images | bbox mAP (%) on 150 val images | Per seed |',
            '|---|---|---|---|',
            f'| Teacher RetinaNet R18 | 600 | {100 * teacher:.1f} | seed 0 |']
    for name, maps in students.items():
        percent = [100 * m for m in maps]
        per_seed = ', '.join(f'{m:.1f}' for m in percent)
        rows.append(f'| Student RetinaNet R18/4, {name} | 100 | {mean_and_std(percent)} | '
                    f'{per_seed} (seeds {seeds}) |')
    return '\n'.join(rows)


def main() -> None:
    args = parse_args()
    start = time.time()
    os.chdir(REPO_ROOT)
    from mmkd_plugins.demo import write_shapes_coco
    write_shapes_coco('data/shapes', SPLITS)

    print('[demo] training the teacher RetinaNet on 600 images ...', flush=True)
    teacher_map, teacher_checkpoint = train_teacher(TEACHER_CONFIG, args.work_dir, MAP)
    print(f'[demo] teacher bbox mAP: {100 * teacher_map:.1f}', flush=True)
    print(f'[demo] training the students on 100 images ({", ".join(STUDENT_RUNS)} x seeds '
          f'{args.seeds}) ...', flush=True)
    students = train_students(STUDENT_RUNS, args.seeds, args.work_dir, MAP, teacher_checkpoint,
                              args.jobs)
    exported_map = retest_exported_student(osp.join(args.work_dir, 'kd', f'seed{args.seeds[0]}'),
                                           MAP)
    print('[demo] comparing the teacher and the seed-0 students ...', flush=True)
    report_dir = write_report(args.work_dir, STUDENT_RUNS, args.seeds, TEACHER_CONFIG,
                              teacher_checkpoint, CURVE_KEYS, MAP)

    summary = (f'{format_table(teacher_map, students, args.seeds)}\n\nExported KD student '
               f'(seed {args.seeds[0]}) re-tested with tools/test.py on the stock student '
               f'config: bbox mAP {100 * exported_map:.1f}.\n'
               f'\nComparison of the seed-{args.seeds[0]} models (tools/analysis/compare.py; '
               f'figures in {report_dir}):\n\n{read_text(report_dir, "comparison.md")}\n'
               f'Total time: {(time.time() - start) / 60:.1f} min.\n')
    with open(osp.join(args.work_dir, 'results.md'), 'w') as file:
        file.write(summary)
    print('\n' + summary)


if __name__ == '__main__':
    main()
