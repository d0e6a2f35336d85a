"""Train a model (a distiller or any stock model) from a config, the OpenMMLab way.

Example:
    python tools/train.py configs/dist/dist_resnet34_resnet18_8xb32_in1k.py --work-dir work_dirs/x
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmkd_plugins  # noqa: F401  (registers types and weights-only checkpoint loading)
from mmkd_plugins.engine import (run_optim_constructor_on_student, seed_of_resumed_run,
                                 setup_cpu_distributed, shutdown_distributed)
from mmkd_plugins.soft_labels import use_soft_label_store


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model (distillation or stock)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in the work dir '
        'when no path is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs (e.g. model.teacher.checkpoint=x)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line arguments to the config."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    resumed_seed = seed_of_resumed_run(cfg)
    if resumed_seed is not None:  # randomness.seed=None: continue with the interrupted run's
        cfg.randomness = dict(cfg.get('randomness') or {}, seed=resumed_seed)
    run_optim_constructor_on_student(cfg)  # a stock constructor (layer decay) sees the student
    use_soft_label_store(cfg)  # model.soft_labels: the pipeline replays the store's views
    return cfg


def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    runner = Runner.from_cfg(setup_cpu_distributed(cfg))
    runner.train()
    shutdown_distributed()


if __name__ == '__main__':
    main()
