"""Write the comparison of several evaluated models: tables (Markdown, CSV) and figures."""

import csv
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from .agreement import sigmoid_agreement, softmax_agreement
from .model_evaluation import ModelEvaluation
from .plots import plot_confusion_matrices, plot_per_class

AGREEMENT_KEYS = ('top1_agreement', 'mean_kl', 'mean_pearson')


def agreement_with(teacher: ModelEvaluation,
                   student: ModelEvaluation) -> Optional[Dict[str, float]]:
    """Teacher–student agreement on the test set, or None when the outputs cannot be compared (no
    dense class scores, or other shapes)."""
    if teacher.logits is None or student.logits is None or (
            teacher.logits.shape != student.logits.shape):
        return None
    if teacher.task == 'classification':
        return softmax_agreement(teacher.logits, student.logits)
    return sigmoid_agreement(teacher.logits, student.logits)


def comparison_rows(evaluations: Sequence[ModelEvaluation],
                    teacher: ModelEvaluation) -> List[Dict[str, object]]:
    """One row per model: parameters, FLOPs, metrics, ms per image, agreement with ``teacher``
    (empty for the teacher itself)."""
    rows = []
    for evaluation in evaluations:
        row: Dict[str, object] = dict(
            model=evaluation.label, params_M=evaluation.parameters / 1e6,
            GFLOPs=None if evaluation.flops is None else evaluation.flops / 1e9)
        row.update(evaluation.metrics)
        row['ms_per_image'] = evaluation.ms_per_image
        agreement = None if evaluation is teacher else agreement_with(teacher, evaluation)
        for key in AGREEMENT_KEYS:
            row[key] = None if agreement is None else agreement[key]
        rows.append(row)
    return rows


def _format(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.4g}' if abs(value) < 10 else f'{value:.2f}'
    return str(value)


def write_tables(rows: List[Dict[str, object]], out_dir: str, teacher_label: str) -> None:
    """``comparison.md`` and ``comparison.csv`` in ``out_dir``."""
    columns = list(rows[0])
    with open(osp.join(out_dir, 'comparison.csv'), 'w', newline='') as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(_format(row[column]) for column in columns) + ' |'
              for row in rows]
    lines += ['', f'Agreement columns compare each model with the teacher "{teacher_label}" on '
              'the same test inputs: top-1 agreement (share of samples, or for detectors of '
              "the teacher's confident positions, with the same top class), mean KL "
              '(teacher ‖ model, nats) and mean Pearson correlation of the probabilities.']
    with open(osp.join(out_dir, 'comparison.md'), 'w') as file:
        file.write('\n'.join(lines) + '\n')


def write_comparison(evaluations: Sequence[ModelEvaluation], out_dir: str,
                     teacher_label: Optional[str] = None) -> List[str]:
    """Write tables and figures for ``evaluations`` to ``out_dir``.

    Args:
        evaluations: The models, in report order.
        out_dir: Created if missing.
        teacher_label: Which model the agreement is measured against. Defaults to the first.

    Returns:
        The files written.
    """
    teacher = evaluations[0] if teacher_label is None else next(
        (e for e in evaluations if e.label == teacher_label), None)
    if teacher is None:
        raise ValueError(f'--teacher {teacher_label!r} is none of the models '
                         f'{[e.label for e in evaluations]}')
    os.makedirs(out_dir, exist_ok=True)
    write_tables(comparison_rows(evaluations, teacher), out_dir, teacher.label)
    files = ['comparison.md', 'comparison.csv', 'per_class.png']
    plot_per_class(evaluations, osp.join(out_dir, 'per_class.png'))
    if all(evaluation.confusion is not None for evaluation in evaluations):
        plot_confusion_matrices(evaluations, osp.join(out_dir, 'confusion_matrices.png'))
        files.append('confusion_matrices.png')
    return [osp.join(out_dir, name) for name in files]
