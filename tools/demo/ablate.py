"""Ablations on the digits demo: one setting changed at a time, several seeds each.

Studies (``STUDY``):

* ``dist``: why DIST trails KD. The demo's DIST student
  (``configs/demo/dist_resnet18w32_resnet18w8_digits.py``) with the inter-class term alone, the
  intra-class term alone, both (the demo's setting), and both at tau 4.
* ``blockwise``: block-wise distillation at lower cost. The demo's block-wise student
  (``configs/demo/blockwise_resnet18w32_resnet18w8_digits.py``) with all four hybrids in every
  step (the paper's form, the demo's setting), two per step in turn, one per step in turn.

Each setting trains against the teacher of a finished digits demo run; the tool prints a table
of final top-1 accuracies (mean ± sample standard deviation) and the mean training time.

Example:
    bash tools/run_demo.sh                     # once: the data and the teacher
    python tools/demo/ablate.py dist --teacher work_dirs/digits_demo/teacher.pth
    python tools/demo/ablate.py blockwise --seeds 0 1 2 3 4
"""
import argparse
import os.path as osp
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Tuple

from demo_runs import mean_and_std, train

METRIC = 'accuracy/top1'
DIST_LOSS = 'model.distill_losses.loss_dist'
# Study -> (its config, its table's first column, setting -> (its row, config overrides)).
STUDIES: Dict[str, Tuple[str, str, Dict[str, Tuple[str, List[str]]]]] = {
    'dist': ('configs/demo/dist_resnet18w32_resnet18w8_digits.py', 'DIST setting', {
        # overrides of the demo's DISTLoss(beta=1, gamma=1, tau=1, loss_weight=2)
        'inter_only': ('inter only (gamma 0), tau 1', [f'{DIST_LOSS}.gamma=0.0']),
        'intra_only': ('intra only (beta 0), tau 1', [f'{DIST_LOSS}.beta=0.0']),
        'both': ('both, tau 1 (the demo)', []),
        'both_tau4': ('both, tau 4', [f'{DIST_LOSS}.tau=4.0']),
    }),
    'blockwise': ('configs/demo/blockwise_resnet18w32_resnet18w8_digits.py',
                  'block-wise hybrids', {
                      'all': ('all 4 per step (the paper, the demo)', []),
                      'per_step2': ('2 per step, in turn', ['model.hybrids.per_step=2']),
                      'per_step1': ('1 per step, in turn', ['model.hybrids.per_step=1']),
                  }),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('study', choices=list(STUDIES))
    parser.add_argument('--teacher', default='work_dirs/digits_demo/teacher.pth',
                        help='the teacher checkpoint of a finished digits demo run')
    parser.add_argument('--data-root', default='data/digits')
    parser.add_argument('--work-dir', help='default: work_dirs/<study>_ablation')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--jobs', type=int, default=2, help='trainings run at once')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    config, column, settings = STUDIES[args.study]
    work_root = args.work_dir or osp.join('work_dirs', f'{args.study}_ablation')
    data = [f'{split}_dataloader.dataset.data_root={args.data_root}'
            for split in ('train', 'val', 'test')]
    runs = [(name, seed) for name in settings for seed in args.seeds]

    def train_one(run: Tuple[str, int]) -> Tuple[float, float]:
        setting, seed = run
        work_dir = osp.join(work_root, setting, f'seed{seed}')
        started = time.time()
        accuracy = train(config, work_dir, seed, METRIC,
                         f'model.teacher.checkpoint={args.teacher}', *data, *settings[setting][1])
        return accuracy, time.time() - started

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train_one, runs))
    print(f'| {column} | top-1 (%) on 500 test digits | per seed (seeds {args.seeds}) '
          f'| mean training time (s, {args.jobs} at once) |')
    print('|---|---|---|---|')
    for setting, (label, _) in settings.items():
        values = [value for (name, _), (value, _) in zip(runs, results) if name == setting]
        seconds = [spent for (name, _), (_, spent) in zip(runs, results) if name == setting]
        print(f'| {label} | {mean_and_std(values)} | '
              + ', '.join(f'{value:.2f}' for value in values)
              + f' | {sum(seconds) / len(seconds):.0f} |')


if __name__ == '__main__':
    main()
