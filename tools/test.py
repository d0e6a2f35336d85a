"""Evaluate a checkpoint with a config's test set (distiller or student-only).

Example:
    python tools/test.py work_dirs/x/student_config.py work_dirs/x/student_final.pth
"""

import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction

from mmkd_plugins.engine import DistillationRunner, shutdown_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation logs')
    parser.add_argument('--out', help='dump the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    runner = DistillationRunner.from_cfg(cfg)  # weights-only loading, CPU DDP
    metrics = runner.test()
    shutdown_distributed()
    if args.out and runner.rank == 0:
        with open(args.out, 'w') as file:
            json.dump({key: float(value) for key, value in metrics.items()}, file, indent=2)


if __name__ == '__main__':
    main()
