"""Train a model (a distiller or any stock model) from a config, the OpenMMLab way: the same
experiment as mmpretrain's and mmdet's own ``tools/train.py`` run from a distillation config (its
``DistillationRunner`` completes the config), on machines without GPUs too.

Example:
    python tools/train.py configs/dist/dist_resnet34_resnet18_8xb32_in1k.py --work-dir work_dirs/x
"""

import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS

import mmkd_plugins  # noqa: F401  (registers the types)
from mmkd_plugins.engine import DistillationRunner


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
    return cfg


def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    # A distillation config names its runner (configs/_base_/distillation_runtime.py), as the
    # stock train scripts build it; a stock config gets DistillationRunner too, which leaves
    # it unchanged but for DDP on machines without GPUs.
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else DistillationRunner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
