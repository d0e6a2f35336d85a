"""Overlay the training curves of several runs in one PNG.

Reads each run's mmengine scalar log (``<work_dir>/<timestamp>/vis_data/scalars.json``) and
draws one panel per loss term (the total, the student's and each distillation term
separately; the mean of the logged values of each epoch) and per validation metric, with all
runs overlaid. Runs given the same label are one setting's seeds: drawn as their mean with the
band from the lowest to the highest seed shaded. A baseline's own terms (``loss_cls``) share
the panels of the distilled students' ``student.loss_cls``.

Example:
    python tools/analysis/plot_curves.py \\
        work_dirs/digits_demo/baseline/seed0:baseline work_dirs/digits_demo/kd/seed0:KD \\
        --out work_dirs/digits_demo/report/curves.png
    # several seeds per setting
    python tools/analysis/plot_curves.py work_dirs/digits_demo/kd/seed{0,1,2}:KD ...
"""

import argparse
import os
import os.path as osp

from mmkd_plugins.analysis import as_student_terms, plot_curves, read_epoch_curves, select_keys


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]))
    parser.add_argument('runs', nargs='+', metavar='WORK_DIR[:LABEL]',
                        help='a run\'s work dir (or scalars.json), optionally labelled; runs '
                        'with the same label are drawn as one band (their seeds)')
    parser.add_argument('--out', required=True, help='the PNG file to write')
    parser.add_argument('--keys', nargs='+', default=['*'], metavar='PATTERN',
                        help='only the losses and metrics matching these patterns '
                        "(fnmatch, e.g. 'loss' 'distill.*' 'accuracy/*'); default: all")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    runs = {}
    for run in args.runs:
        path, _, label = run.partition(':')
        curves = as_student_terms(read_epoch_curves(path))
        runs.setdefault(label or osp.basename(osp.normpath(path)), []).append(
            select_keys(curves, args.keys))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    plot_curves(runs, args.out)
    print(f'[plot_curves] wrote {args.out}')


if __name__ == '__main__':
    main()
