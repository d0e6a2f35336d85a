"""Figures of a comparison: per-class bars, confusion matrices, training curves (matplotlib)."""

from typing import Dict, Sequence, cast

import numpy as np
import torch
from matplotlib.figure import Figure  # drawn to files only: pyplot's backend is left alone

from .model_evaluation import ModelEvaluation
from .training_logs import EpochCurves, curve_bands


def plot_per_class(evaluations: Sequence[ModelEvaluation], path: str) -> None:
    """Grouped bars: per-class accuracy (or AP) of every model side by side."""
    classes = list(evaluations[0].per_class)
    width = 0.8 / len(evaluations)
    positions = np.arange(len(classes))
    figure = Figure(figsize=(max(6, 0.9 * len(classes) + 2), 4))
    axes = figure.subplots()
    for index, evaluation in enumerate(evaluations):
        values = [evaluation.per_class.get(name, np.nan) for name in classes]
        axes.bar(positions + (index - (len(evaluations) - 1) / 2) * width, values, width,
                 label=evaluation.label)
    axes.set_xticks(positions, classes)
    axes.set_xlabel('class')
    axes.set_ylabel('accuracy (%)' if evaluations[0].task == 'classification' else 'AP (%)')
    low = min(min(e.per_class.values()) for e in evaluations)
    axes.set_ylim(max(0, low - 10), 100)
    axes.legend(fontsize='small', ncol=min(len(evaluations), 5), loc='upper center',
                bbox_to_anchor=(0.5, -0.15))
    axes.set_title('Per-class ' + ('accuracy' if evaluations[0].task == 'classification'
                                   else 'AP (COCO, IoU .5:.95)'))
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def plot_confusion_matrices(evaluations: Sequence[ModelEvaluation], path: str) -> None:
    """One row-normalized confusion matrix per model (rows: true class, columns: predicted), with
    the counts written in the cells."""
    classes = list(evaluations[0].per_class)
    figure = Figure(figsize=(3.6 * len(evaluations), 3.8))
    axes = figure.subplots(1, len(evaluations), squeeze=False)
    for axis, evaluation in zip(axes[0], evaluations):
        counts = cast(torch.Tensor, evaluation.confusion).numpy()  # classifiers have one
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(rates, cmap='Blues', vmin=0, vmax=1)
        for true, predicted in zip(*np.nonzero(counts)):
            axis.text(predicted, true, str(counts[true, predicted]), ha='center', va='center',
                      fontsize=6, color='white' if rates[true, predicted] > 0.5 else 'black')
        axis.set_xticks(range(len(classes)), classes, fontsize=7)
        axis.set_yticks(range(len(classes)), classes, fontsize=7)
        axis.set_xlabel('predicted')
        axis.set_ylabel('true')
        axis.set_title(evaluation.label, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def plot_curves(runs: Dict[str, Sequence[EpochCurves]], path: str) -> None:
    """Overlay the runs: one panel per loss term (each distillation term separately) and per
    validation metric, epochs on the x axis.

    Args:
        runs: Label -> the curves of that setting's runs (its seeds). One run is drawn as a
            line; several as their mean, with the band between the lowest and the highest run
            shaded, so that a gap between settings can be told from the seed-to-seed spread.
        path: The PNG file to write.
    """
    bands = {label: curve_bands(curves) for label, curves in runs.items()}
    metrics = {key for curves in runs.values() for run in curves for key in run.metrics}
    panels = sorted({key for band in bands.values() for key in band} - metrics)
    panels += sorted(metrics)
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(4.2 * columns, 3.0 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    colors = {label: f'C{index}' for index, label in enumerate(runs)}  # one colour per setting
    for axis, key in zip(axes.flat, panels):
        for label, band in bands.items():
            if key not in band:
                continue
            curve = band[key]
            seeds = len(runs[label])
            name = label if seeds == 1 else f'{label} ({seeds} seeds)'
            marker = 'o' if len(curve.epochs) < 30 else None
            axis.plot(curve.epochs, curve.mean, label=name, marker=marker, markersize=3,
                      color=colors[label])
            if seeds > 1:
                axis.fill_between(curve.epochs, curve.low, curve.high, color=colors[label],
                                  alpha=0.2, linewidth=0)
        axis.set_title(key, fontsize=9)
        axis.set_xlabel('epoch')
        axis.legend(fontsize='x-small')
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    if any(len(curves) > 1 for curves in runs.values()):
        figure.suptitle('lines: mean over seeds; shaded: lowest to highest seed', fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
