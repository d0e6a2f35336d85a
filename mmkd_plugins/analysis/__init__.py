"""Analysis of distillation runs: evaluate and compare models, read and plot training curves."""
from .agreement import sigmoid_agreement, softmax_agreement
from .comparison_report import agreement_with, comparison_rows, write_comparison
from .model_evaluation import ModelEvaluation, evaluate_model
from .plots import plot_confusion_matrices, plot_curves, plot_per_class
from .training_logs import EpochCurves, find_scalar_log, read_epoch_curves, select_keys

__all__ = [
    'EpochCurves', 'ModelEvaluation', 'agreement_with', 'comparison_rows', 'evaluate_model',
    'find_scalar_log', 'plot_confusion_matrices', 'plot_curves', 'plot_per_class',
    'read_epoch_curves', 'select_keys', 'sigmoid_agreement', 'softmax_agreement',
    'write_comparison'
]
