"""Ablations on the demos: one setting changed at a time, several seeds each.

Studies (``STUDY``):

* ``dist``: why DIST trails KD. The demo's DIST student
  (``configs/demo/dist_resnet18w32_resnet18w8_digits.py``) with the inter-class term alone, the
  intra-class term alone, both (the demo's setting), both at tau 4, at loss weights 1 and 8
  (the demo: 2), and at batch sizes 16 and 50 (the demo: 32); the demo's KD and baseline
  students as references trained against the same teacher.
* ``labels``: the baseline, KD and DIST students on 200 labelled digits (20 a class) instead
  of the demo's 50, for 150 epochs (7 steps an epoch: 1,050 steps, the demo's 800), to see
  whether DIST's gap to KD comes from having few labelled images. The 200 are the demo's 50
  and the first 15 of each class in ``extra_train.txt`` (written as
  ``student_train_200.txt`` in the data folder).
* ``blockwise``: block-wise distillation at lower cost. The demo's block-wise student
  (``configs/demo/blockwise_resnet18w32_resnet18w8_digits.py``) with all four hybrids in every
  step (the paper's form, the demo's setting), two per step in turn, one per step in turn; one
  per step without the n/k weight scaling and without the cross term, to tell which of the two
  costs that form its accuracy; all four without the cross term; and a fixed subset of the
  cheap hybrids (N_3 and N_4, or N_4 alone) in every step.
* ``blockwise_detection``: the same question on the detection demo. Its block-wise-late student
  (``configs/demo/det/blockwise_late_retinanet_r18_retinanet_r18w16_shapes.py``, hybrids N_3
  and N_4) without the hybrids' task losses (``hybrids.task_losses=False``: the teacher head's
  box branch, label assignment and loss are not run), and the hybrid N_4 alone, with and
  without its task loss, and without it with the logit terms recomputed in backward (the
  cheapest form, ``recompute_logit_terms=True``).

* ``heterogeneous``: a teacher of another family than the student. The demo's student with a
  small vision transformer teacher (``configs/demo/teacher_vit_digits.py``, trained on the
  teacher's 1,297 digits by ``tools/train.py``): baseline, KD and block-wise (the student's
  stage maps laid out as the teacher's tokens, see docs/user_guides/blockwise.md) with the
  demo's settings; pass the transformer's checkpoint as ``--teacher``.

Each setting trains against the teacher of a finished demo run (digits, or shapes for the
detection study); the tool prints a table of final top-1 accuracies or bbox mAPs (mean ± sample
standard deviation) and the mean training time.

Example:
    bash tools/run_demo.sh                     # once: the data and the teacher
    python .dev_scripts/ablate.py dist --teacher work_dirs/digits_demo/teacher.pth
    python .dev_scripts/ablate.py blockwise --seeds 0 1 2 3 4
    bash tools/run_demo.sh detection           # once: the shapes and their teacher
    python .dev_scripts/ablate.py blockwise_detection
    python tools/train.py configs/demo/teacher_vit_digits.py --work-dir work_dirs/vit_teacher
    python .dev_scripts/ablate.py heterogeneous --teacher work_dirs/vit_teacher/epoch_100.pth
"""

import argparse
import os.path as osp
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Tuple

# the demos' run helpers and data settings
sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools', 'demo'))
from demo_runs import mean_and_std, needs_teacher, train  # noqa: E402
from run_classification_demo import data_options  # noqa: E402
from run_detection_demo import SHAPES, SPLITS  # noqa: E402

CONFIGS = 'configs/demo'
BASELINE = f'{CONFIGS}/student_resnet18w8_digits.py'
KD = f'{CONFIGS}/kd_resnet18w32_resnet18w8_digits.py'
DIST = f'{CONFIGS}/dist_resnet18w32_resnet18w8_digits.py'
BLOCKWISE = f'{CONFIGS}/blockwise_resnet18w32_resnet18w8_digits.py'
BLOCKWISE_DETECTION = f'{CONFIGS}/det/blockwise_late_retinanet_r18_retinanet_r18w16_shapes.py'
VIT_TEACHER = [f'model.teacher.config={CONFIGS}/teacher_vit_digits.py']
DIST_LOSS = 'model.distill_losses.loss_dist'
LABELLED_200 = 'student_train_200.txt'
ON_200_LABELS = [f'train_dataloader.dataset.ann_file={LABELLED_200}', 'train_cfg.max_epochs=150',
                 'param_scheduler.T_max=150', 'default_hooks.checkpoint.interval=150']
# Study -> (its table's first column, setting -> (its row, its config, config overrides)).
STUDIES: Dict[str, Tuple[str, Dict[str, Tuple[str, str, List[str]]]]] = {
    'dist': ('DIST setting', {
        # overrides of the demo's DISTLoss(beta=1, gamma=1, tau=1, loss_weight=2), batch 32
        'inter_only': ('inter only (gamma 0), tau 1', DIST, [f'{DIST_LOSS}.gamma=0.0']),
        'intra_only': ('intra only (beta 0), tau 1', DIST, [f'{DIST_LOSS}.beta=0.0']),
        'both': ('both, tau 1 (the demo)', DIST, []),
        'both_tau4': ('both, tau 4', DIST, [f'{DIST_LOSS}.tau=4.0']),
        'weight1': ('both, loss weight 1', DIST, [f'{DIST_LOSS}.loss_weight=1.0']),
        'weight8': ('both, loss weight 8', DIST, [f'{DIST_LOSS}.loss_weight=8.0']),
        'batch16': ('both, batch 16 (4 steps an epoch)', DIST,
                    ['train_dataloader.batch_size=16']),
        'batch50': ('both, batch 50 (all images, 1 step an epoch)', DIST,
                    ['train_dataloader.batch_size=50']),
        # references of the same run and teacher
        'kd': ('KD, tau 4 (the demo\'s KD, for reference)', KD, []),
        'baseline': ('no teacher (the demo\'s baseline, for reference)', BASELINE, []),
    }),
    'labels': ('student on 200 labelled digits', {
        'baseline': ('baseline', BASELINE, ON_200_LABELS),
        'kd': ('KD', KD, ON_200_LABELS),
        'dist': ('DIST (the demo\'s setting)', DIST, ON_200_LABELS),
    }),
    'blockwise': ('block-wise hybrids', {
        'all': ('all 4 per step (the paper, the demo)', BLOCKWISE, []),
        'per_step2': ('2 per step, in turn', BLOCKWISE, ['model.hybrids.per_step=2']),
        'per_step1': ('1 per step, in turn', BLOCKWISE, ['model.hybrids.per_step=1']),
        # what costs the in-turn form its accuracy: the n/k-fold weight of its one hybrid, or
        # the cross term's target (Y^ens is then that hybrid alone)
        'per_step1_unscaled': ('1 per step, in turn, weights 1/4 (no n/k scaling)', BLOCKWISE,
                               ['model.hybrids.per_step=1',
                                'model.hybrids.weights=[0.25,0.25,0.25,0.25]']),
        'per_step1_no_cross': ('1 per step, in turn, no cross term (gamma 0)', BLOCKWISE,
                               ['model.hybrids.per_step=1', 'model.gamma=0.0']),
        'all_no_cross': ('all 4 per step, no cross term (gamma 0)', BLOCKWISE,
                         ['model.gamma=0.0']),
        # a fixed subset of the cheap hybrids (few teacher stages to run) in every step
        'stages34': ('hybrids N_3 and N_4 only, every step', BLOCKWISE,
                     ['model.hybrids.stages=[3,4]']),
        'stage4': ('hybrid N_4 only (the teacher head), every step', BLOCKWISE,
                   ['model.hybrids.stages=[4]']),
    }),
    'heterogeneous': ('ViT teacher, ResNet-18 w8 student', {
        'baseline': ('no teacher (the demo\'s baseline)', BASELINE, []),
        'kd': ('KD, tau 4 (the demo\'s setting)', KD, VIT_TEACHER),
        'blockwise': ('block-wise, all 4 hybrids (the demo\'s setting)', BLOCKWISE,
                      VIT_TEACHER),
    }),
    'blockwise_detection': ('block-wise hybrids (RetinaNet on shapes)', {
        'late': ('N_3 and N_4 with their task losses (the demo\'s block-wise-late)',
                 BLOCKWISE_DETECTION, []),
        'late_no_task': ('N_3 and N_4, no task losses', BLOCKWISE_DETECTION,
                         ['model.hybrids.task_losses=False']),
        'last': ('N_4 only, with its task loss', BLOCKWISE_DETECTION,
                 ['model.hybrids.stages=[4]']),
        'last_no_task': ('N_4 only, no task loss', BLOCKWISE_DETECTION,
                         ['model.hybrids.stages=[4]', 'model.hybrids.task_losses=False']),
        'last_no_task_lean': ('N_4 only, no task loss, logit terms recomputed in backward',
                              BLOCKWISE_DETECTION,
                              ['model.hybrids.stages=[4]', 'model.hybrids.task_losses=False',
                               'model.recompute_logit_terms=True']),
    }),
}


class Task(NamedTuple):
    """What a study's runs are evaluated with and where their teacher and data come from."""

    metric: str  # the logged metric read at the end of each run
    scale: float  # the factor that makes it a percentage
    header: str  # the table's column of that metric
    teacher: str  # the default teacher checkpoint, of a finished demo run


DIGITS = Task('accuracy/top1', 1.0, 'top-1 (%) on 500 test digits',
              'work_dirs/digits_demo/teacher.pth')
SHAPES_TASK = Task('coco/bbox_mAP', 100.0, 'bbox mAP (%) on 150 val images',
                   'work_dirs/shapes_demo/teacher.pth')
TASK_OF_STUDY = {'blockwise_detection': SHAPES_TASK}


def write_200_labelled(data_root: str, per_class: int = 15) -> None:
    """``student_train_200.txt``: the demo's 50 labelled digits and the first ``per_class`` of each
    class in ``extra_train.txt`` (a random, class-stratified part of the teacher's data)."""

    by_class: Dict[str, List[str]] = defaultdict(list)
    with open(osp.join(data_root, 'extra_train.txt')) as file:
        for line in file:
            by_class[line.split()[1]].append(line)
    with open(osp.join(data_root, 'student_train.txt')) as file:
        lines = file.readlines()
    lines += [line for label in sorted(by_class) for line in by_class[label][:per_class]]
    with open(osp.join(data_root, LABELLED_200), 'w') as file:
        file.writelines(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('study', choices=list(STUDIES))
    parser.add_argument('--teacher', help='the teacher checkpoint of a finished demo run '
                        f'(default: {DIGITS.teacher}, or {SHAPES_TASK.teacher} for the '
                        'detection study)')
    parser.add_argument('--data-root', default='data/digits',
                        help='the digits data (the detection study writes data/shapes)')
    parser.add_argument('--work-dir', help='default: work_dirs/<study>_ablation')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--jobs', type=int, default=2, help='trainings run at once')
    parser.add_argument('--settings', nargs='+', metavar='SETTING',
                        help='only these settings of the study (default: all)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    column, settings = STUDIES[args.study]
    unknown = set(args.settings or []) - set(settings)
    if unknown:
        raise SystemExit(f'--settings: {sorted(unknown)} not in study {args.study!r}; '
                         f'its settings: {list(settings)}')
    settings = {name: settings[name] for name in args.settings or settings}
    task = TASK_OF_STUDY.get(args.study, DIGITS)
    teacher_checkpoint = args.teacher or task.teacher
    if args.study == 'labels':
        write_200_labelled(args.data_root)
    if task is SHAPES_TASK:
        from mmkd_plugins.testing import write_shapes_coco
        write_shapes_coco('data/shapes', SPLITS, **SHAPES)
        data = []  # the detection configs read data/shapes
    else:
        data = data_options(args.data_root)
    work_root = args.work_dir or osp.join('work_dirs', f'{args.study}_ablation')
    runs = [(name, seed) for name in settings for seed in args.seeds]

    def train_one(run: Tuple[str, int]) -> Tuple[float, float]:
        setting, seed = run
        work_dir = osp.join(work_root, setting, f'seed{seed}')
        started = time.time()
        _, config, overrides = settings[setting]
        teacher = ([f'model.teacher.checkpoint={teacher_checkpoint}']
                   if needs_teacher(setting) else [])
        value = train(config, work_dir, seed, task.metric, *teacher, *data, *overrides)
        return task.scale * value, time.time() - started

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train_one, runs))
    print(f'| {column} | {task.header} | per seed (seeds {args.seeds}) '
          f'| mean training time (s, {args.jobs} at once) |')
    print('|---|---|---|---|')
    for setting, (label, _, _) in settings.items():
        values = [value for (name, _), (value, _) in zip(runs, results) if name == setting]
        seconds = [spent for (name, _), (_, spent) in zip(runs, results) if name == setting]
        print(f'| {label} | {mean_and_std(values)} | '
              + ', '.join(f'{value:.2f}' for value in values)
              + f' | {sum(seconds) / len(seconds):.0f} |')


if __name__ == '__main__':
    main()
