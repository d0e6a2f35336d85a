"""Analysis of distillation runs: evaluate and compare models, read and plot training curves."""

from .agreement import sigmoid_agreement, softmax_agreement
from .comparison_report import agreement_with, comparison_rows, write_comparison
from .model_evaluation import ModelEvaluation, evaluate_model
from .plots import plot_confusion_matrices, plot_curves, plot_per_class
from .training_logs import (CurveBand, EpochCurves, as_student_terms, curve_bands, find_scalar_log,
                            read_epoch_curves, select_keys)

__all__ = [
    'CurveBand', 'EpochCurves', 'ModelEvaluation', 'agreement_with', 'as_student_terms',
    'comparison_rows', 'curve_bands', 'evaluate_model',
    'find_scalar_log', 'plot_confusion_matrices', 'plot_curves', 'plot_per_class',
    'read_epoch_curves', 'select_keys', 'sigmoid_agreement', 'softmax_agreement',
    'write_comparison'
]
