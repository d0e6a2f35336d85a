"""Check the distiller's faster teacher options on a trained teacher: same accuracy, how fast?

Evaluates CONFIG + CHECKPOINT on its config's test set the ways a distiller can run its
teacher: as configured (float32), ``channels_last=True``, ``bf16=True`` (bfloat16 autocast, head
outputs in float32) and both, and prints, for each, the headline metric (top-1 or COCO bbox mAP),
its difference from float32, inference ms per image and whether it stays within
``--tolerance`` points. Turn an option on in ``teacher=dict(...)`` only if it does.

Example:
    python tools/analysis/check_teacher_options.py \\
        configs/demo/teacher_resnet18w32_digits.py work_dirs/digits_demo/teacher.pth
"""

import argparse

from mmengine.config import Config, DictAction

from mmkd_plugins.analysis import evaluate_model

# label -> evaluate_model's keyword arguments
TEACHER_OPTIONS = {
    'float32': dict(),
    'channels_last': dict(channels_last=True),
    'bf16': dict(bf16=True),
    'channels_last+bf16': dict(channels_last=True, bf16=True),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]))
    parser.add_argument('config', help="the teacher's config")
    parser.add_argument('checkpoint', help="the teacher's weights")
    parser.add_argument('--tolerance', type=float, default=0.1,
                        help='largest acceptable metric change, in points (default 0.1)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides of the config, e.g. the data root')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    config = Config.fromfile(args.config)
    config.merge_from_dict(args.cfg_options)
    rows = []
    for label, options in TEACHER_OPTIONS.items():
        print(f'[check] evaluating {label} ...', flush=True)
        evaluation = evaluate_model(config, args.checkpoint, label, **options)
        metric = 'top1' if evaluation.task == 'classification' else 'bbox_mAP'
        rows.append((label, metric, evaluation.metrics[metric], evaluation.ms_per_image))
        print(flush=True)
    reference = rows[0][2]
    print('| teacher option | metric | value | change | ms/image | within tolerance |')
    print('|---|---|---|---|---|---|')
    for label, metric, value, ms_per_image in rows:
        change = value - reference
        # 1e-9: metrics printed to 0.1 point (COCO) differ from it by float rounding
        verdict = 'yes' if abs(change) <= args.tolerance + 1e-9 else 'no'
        print(f'| {label} | {metric} | {value:.2f} | {change:+.2f} | {ms_per_image:.1f} '
              f'| {verdict} |')


if __name__ == '__main__':
    main()
