"""Why DIST trails KD in the digits demo: its terms and temperature, one at a time.

Trains the digits demo's DIST student (``configs/demo/dist_resnet18w32_resnet18w8_digits.py``)
with the inter-class term alone, the intra-class term alone, both (the demo's setting), and
both at tau 4, for several seeds, against the teacher of a finished digits demo run, and
prints a table of final top-1 accuracies (mean ± sample standard deviation).

Example:
    bash tools/run_demo.sh                     # once: the data and the teacher
    python tools/demo/ablate_dist.py --teacher work_dirs/digits_demo/teacher.pth
"""
import argparse
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Tuple

from demo_runs import mean_and_std, train

DIST_CONFIG = 'configs/demo/dist_resnet18w32_resnet18w8_digits.py'
METRIC = 'accuracy/top1'
LOSS = 'model.distill_losses.loss_dist'
# Setting -> (its row in the table, overrides of the demo's DISTLoss(beta=1, gamma=1, tau=1,
# loss_weight=2)).
SETTINGS: Dict[str, Tuple[str, List[str]]] = {
    'inter_only': ('inter only (gamma 0), tau 1', [f'{LOSS}.gamma=0.0']),
    'intra_only': ('intra only (beta 0), tau 1', [f'{LOSS}.beta=0.0']),
    'both': ('both, tau 1 (the demo)', []),
    'both_tau4': ('both, tau 4', [f'{LOSS}.tau=4.0']),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--teacher', default='work_dirs/digits_demo/teacher.pth',
                        help='the teacher checkpoint of a finished digits demo run')
    parser.add_argument('--data-root', default='data/digits')
    parser.add_argument('--work-dir', default='work_dirs/dist_ablation')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--jobs', type=int, default=2, help='trainings run at once')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    data = [f'{split}_dataloader.dataset.data_root={args.data_root}'
            for split in ('train', 'val', 'test')]
    runs = [(name, seed) for name in SETTINGS for seed in args.seeds]

    def train_one(run: Tuple[str, int]) -> float:
        setting, seed = run
        work_dir = osp.join(args.work_dir, setting, f'seed{seed}')
        return train(DIST_CONFIG, work_dir, seed, METRIC,
                     f'model.teacher.checkpoint={args.teacher}', *data, *SETTINGS[setting][1])

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train_one, runs))
    print(f'| DIST setting | top-1 (%) on 500 test digits | per seed (seeds {args.seeds}) |')
    print('|---|---|---|')
    for setting, (label, _) in SETTINGS.items():
        values = [value for (name, _), value in zip(runs, results) if name == setting]
        print(f'| {label} | {mean_and_std(values)} | '
              + ', '.join(f'{value:.2f}' for value in values) + ' |')


if __name__ == '__main__':
    main()
