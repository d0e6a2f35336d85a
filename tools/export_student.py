"""Write a student-only checkpoint from any distillation checkpoint.

The result loads strictly into the stock student config (mmpretrain's/mmdet's ``init_model``
and ``tools/test.py``). An existing output file is never replaced unless ``--force`` is given.

Example:
    python tools/export_student.py work_dirs/x/epoch_100.pth student.pth
"""

import argparse

from mmkd_plugins.checkpoint import export_student_checkpoint, safe_torch_load


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export the student of a distillation run')
    parser.add_argument('checkpoint', help='a checkpoint saved by a distillation run')
    parser.add_argument('out', help='the student-only checkpoint to write')
    parser.add_argument('--force', action='store_true', help='replace an existing output file')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    checkpoint = safe_torch_load(args.checkpoint, map_location='cpu')
    exported = export_student_checkpoint(checkpoint, args.out, overwrite=args.force,
                                         source=args.checkpoint)
    print(f'wrote {args.out}: {len(exported["state_dict"])} student tensors')


if __name__ == '__main__':
    main()
