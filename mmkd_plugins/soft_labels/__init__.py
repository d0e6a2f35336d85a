"""The soft-label store (FKD, Shen & Xing, ECCV 2022): the teacher's top-k probabilities of K
pre-drawn views of each training sample, made once by ``tools/make_soft_labels.py`` and
replayed in training, so that the teacher never runs."""
from .pipeline_rewrite import split_pipeline, training_dataset_with_pipeline, use_soft_label_store
from .store import SoftLabelStore, bytes_per_sample, sample_identity
from .stored_logits import logits_from_soft_labels, top_k_soft_labels
from .teacher_identity import teacher_differences, teacher_identity
from .view_replay import VIEW_KEY, ReplayStoredView, apply_view, build_transforms

__all__ = [
    'split_pipeline', 'training_dataset_with_pipeline', 'use_soft_label_store',
    'SoftLabelStore', 'bytes_per_sample', 'sample_identity', 'logits_from_soft_labels',
    'top_k_soft_labels', 'teacher_differences', 'teacher_identity', 'VIEW_KEY', 'ReplayStoredView',
    'apply_view', 'build_transforms'
]
