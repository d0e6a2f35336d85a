"""The embedded default: a real, small distillation run on scikit-learn's handwritten digits.

Trains, through ``tools/train.py`` and the configs in ``configs/demo/``:
  * a teacher (CIFAR ResNet-18, half width) on 1,297 digits;
  * a student baseline (CIFAR ResNet-18, 1/8 width) on only 50 digits, with labels alone;
  * the same student distilled from that teacher with KD, DIST, block-wise (hybrids with
    learned stage connectors, KD as the distance), CTKD (KD with a learned temperature) and DKD,
  * and with KD from a soft-label store (``KD-stored``: the teacher's top-10 probabilities of
    100 views per image, made once by ``tools/make_soft_labels.py``; the teacher never runs
    in training),
each student over several seeds, then prints teacher / baseline / distilled top-1 accuracy on
500 held-out digits (mean ± std over the seeds) and each run's training time, and writes it to
``<work-dir>/results.md``.
The first distilled student is also exported and re-evaluated with ``tools/test.py`` on the
stock student config, to show that the exported checkpoint is a plain student. Last, the
teacher and the first seed's students are compared by ``tools/analysis/compare.py``, and the
training curves of every run over all seeds drawn by ``tools/analysis/plot_curves.py``, into
``<work-dir>/report``.
"""

import argparse
import json
import os
import os.path as osp
import time
import warnings
from typing import Dict, List

from demo_runs import (REPO_ROOT, mean_and_std, mean_train_seconds, read_text,
                       retest_exported_student, run_tool, train_students, train_teacher,
                       write_report)

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
CONFIGS = osp.join('configs', 'demo')
TEACHER_CONFIG = osp.join(CONFIGS, 'teacher_resnet18w32_digits.py')
STUDENT_RUNS = {
    'baseline': osp.join(CONFIGS, 'student_resnet18w8_digits.py'),
    'KD': osp.join(CONFIGS, 'kd_resnet18w32_resnet18w8_digits.py'),
    'DIST': osp.join(CONFIGS, 'dist_resnet18w32_resnet18w8_digits.py'),
    'block-wise': osp.join(CONFIGS, 'blockwise_resnet18w32_resnet18w8_digits.py'),
    'CTKD': osp.join(CONFIGS, 'ctkd_resnet18w32_resnet18w8_digits.py'),
    'DKD': osp.join(CONFIGS, 'dkd_resnet18w32_resnet18w8_digits.py'),
    'KD-stored': osp.join(CONFIGS, 'kd-stored_resnet18w32_resnet18w8_digits.py'),
}
STORE_VIEWS, STORE_TOP_K = 100, 10
TOP1 = 'accuracy/top1'
CURVE_KEYS = ['loss', 'student.loss', 'distill.*', 'cross.*', TOP1]
SPLITS = {'test': 500, 'student_train': 50, 'extra_train': None}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/digits_demo')
    parser.add_argument('--data-root', default='data/digits')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    parser.add_argument('--jobs', type=int, default=2,
                        help='trainings run at once (each with one thread)')
    return parser.parse_args()


def prepare_data(data_root: str) -> None:
    """Write the digits folder; the teacher trains on the student's 50 images and 1,247 more."""
    from mmkd_plugins.testing import write_digits_folder
    ann_files = write_digits_folder(data_root, SPLITS, image_size=16)
    with open(osp.join(data_root, 'teacher_train.txt'), 'w') as out:
        for split in ('student_train', 'extra_train'):
            with open(ann_files[split]) as file:
                out.write(file.read())


def data_options(data_root: str) -> List[str]:
    return [f'{split}_dataloader.dataset.data_root={data_root}'
            for split in ('train', 'val', 'test')]


def count_parameters(config: str) -> int:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmkd_plugins.models.teachers import build_model_from_config
    init_default_scope('mmpretrain')
    model = build_model_from_config(Config.fromfile(osp.join(REPO_ROOT, config)))
    return sum(p.numel() for p in model.parameters())


def make_soft_label_store(store: str, teacher_checkpoint: str, data_root: str) -> float:
    """Make the KD-stored run's store; return the seconds it took."""
    start = time.perf_counter()
    run_tool('make_soft_labels.py', STUDENT_RUNS['KD-stored'], '--out', store, '--views',
             str(STORE_VIEWS), '--top-k', str(STORE_TOP_K), '--cfg-options',
             f'model.teacher.checkpoint={teacher_checkpoint}', *data_options(data_root))
    return time.perf_counter() - start


def format_table(teacher: float, students: Dict[str, List[float]], seeds: List[int],
                 work_dir: str) -> str:
    teacher_params = count_parameters(TEACHER_CONFIG)
    student_params = count_parameters(STUDENT_RUNS['baseline'])
    rows = ['| Model | Params | Train images | Top-1 (%) on 500 test digits | Per seed | '
            'Training time per run (s) |',
            '|---|---|---|---|---|---|',
            f'| Teacher ResNet-18 (w32) | {teacher_params / 1e6:.2f} M | 1297 | {teacher:.2f} '
            '| seed 0 | |']
    for name, accuracies in students.items():
        per_seed = ', '.join(f'{a:.2f}' for a in accuracies)
        seconds = mean_train_seconds(work_dir, name, seeds)
        rows.append(f'| Student ResNet-18 (w8), {name} | {student_params / 1e6:.3f} M | 50 | '
                    f'{mean_and_std(accuracies)} | {per_seed} (seeds {seeds}) | {seconds:.0f} |')
    return '\n'.join(rows)


def main() -> None:
    args = parse_args()
    start = time.time()
    os.chdir(REPO_ROOT)
    prepare_data(args.data_root)
    print('[demo] training the teacher on 1,297 digits ...', flush=True)
    teacher_accuracy, teacher_checkpoint = train_teacher(
        TEACHER_CONFIG, args.work_dir, TOP1, 'train_dataloader.dataset.ann_file=teacher_train.txt',
        *data_options(args.data_root))
    print(f'[demo] teacher top-1: {teacher_accuracy:.2f} %', flush=True)
    print(f'[demo] training the students on 50 digits ({", ".join(STUDENT_RUNS)} x seeds '
          f'{args.seeds}) ...', flush=True)
    store = osp.join(args.work_dir, 'soft_labels')
    store_seconds = make_soft_label_store(store, teacher_checkpoint, args.data_root)
    print(f'[demo] soft-label store of {STORE_VIEWS} views x top-{STORE_TOP_K} per image made '
          f'in {store_seconds:.1f} s', flush=True)
    students = train_students(STUDENT_RUNS, args.seeds, args.work_dir, TOP1, teacher_checkpoint,
                              args.jobs, *data_options(args.data_root),
                              run_options={'KD-stored': [f'model.soft_labels.store={store}']})
    exported_accuracy = retest_exported_student(
        osp.join(args.work_dir, 'kd', f'seed{args.seeds[0]}'), TOP1,
        *data_options(args.data_root))
    print('[demo] comparing the teacher and the seed-0 students ...', flush=True)
    report_dir = write_report(args.work_dir, STUDENT_RUNS, args.seeds, TEACHER_CONFIG,
                              teacher_checkpoint, CURVE_KEYS, TOP1, *data_options(args.data_root))

    table = format_table(teacher_accuracy, students, args.seeds, args.work_dir)
    summary = (f'{table}\n\nTraining times: {args.jobs} runs at once, one thread each. '
               f'KD-stored read a store of {STORE_VIEWS} views x top-{STORE_TOP_K} per image, '
               f'made once in {store_seconds:.1f} s (tools/make_soft_labels.py).\n'
               f'\nExported KD student (seed {args.seeds[0]}) re-tested with '
               f'tools/test.py on the stock student config: {exported_accuracy:.2f} %.\n'
               f'\nComparison of the seed-{args.seeds[0]} models (tools/analysis/compare.py; '
               f'figures in {report_dir}):\n\n{read_text(report_dir, "comparison.md")}\n'
               f'Total time: {(time.time() - start) / 60:.1f} min.\n')
    with open(osp.join(args.work_dir, 'results.md'), 'w') as file:
        file.write(summary)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as file:
        json.dump(dict(teacher=teacher_accuracy, students=students, seeds=args.seeds,
                       exported_kd_student=exported_accuracy, store_seconds=store_seconds,
                       train_seconds={name: mean_train_seconds(args.work_dir, name, args.seeds)
                                      for name in students}), file, indent=2)
    print('\n' + summary)


if __name__ == '__main__':
    main()
