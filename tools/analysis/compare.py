"""Compare trained models on a test set: table, per-class chart, confusion matrices, agreement.

Each ``--model CONFIG CHECKPOINT LABEL`` is a stock mmpretrain/mmdet config with its weights,
e.g. a teacher, a baseline student and the ``student_config.py`` + ``student_final.pth`` of a
distillation run. All models are evaluated on the test set of their own config (give configs
that share it). Written to ``--out``:

* ``comparison.md`` / ``comparison.csv``: parameters, FLOPs (mmengine's counter, one image),
  top-1/top-5 or COCO bbox mAP, inference ms per image, and each model's agreement with the
  teacher (top-1 agreement, mean KL, mean Pearson of the probabilities);
* ``per_class.png``: per-class accuracy (or AP) of all models side by side;
* ``confusion_matrices.png``: one per model (classification).

Example:
    python tools/analysis/compare.py \\
        --model configs/demo/teacher_resnet18w32_digits.py \\
                work_dirs/digits_demo/teacher.pth teacher \\
        --model work_dirs/digits_demo/kd/seed0/student_config.py \\
                work_dirs/digits_demo/kd/seed0/student_final.pth KD \\
        --out work_dirs/digits_demo/report
"""

import argparse

from mmengine.config import Config, DictAction

from mmkd_plugins.analysis import evaluate_model, write_comparison


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]))
    parser.add_argument('--model', nargs=3, action='append', required=True,
                        metavar=('CONFIG', 'CHECKPOINT', 'LABEL'),
                        help='a model to compare (repeat; at least two)')
    parser.add_argument('--out', required=True, help='folder for the tables and figures')
    parser.add_argument('--teacher', help='label of the model the agreement is measured '
                        'against (default: the first)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='overrides applied to every config, e.g. the data root')
    args = parser.parse_args()
    if len(args.model) < 2:
        parser.error('give at least two --model entries')
    return args


def main() -> None:
    args = parse_args()
    evaluations = []
    for config_path, checkpoint, label in args.model:
        config = Config.fromfile(config_path)
        config.merge_from_dict(args.cfg_options)
        print(f'[compare] evaluating {label} ...', flush=True)
        evaluations.append(evaluate_model(config, checkpoint, label))
        print(flush=True)
    for path in write_comparison(evaluations, args.out, args.teacher):
        print(f'[compare] wrote {path}')


if __name__ == '__main__':
    main()
