"""The soft-label store (FKD, Shen & Xing, ECCV 2022): the teacher's top-k probabilities of K pre-
drawn views of each training sample, made once by ``tools/make_soft_labels.py`` and replayed in
training, so that the teacher never runs (the replaying transform is
:class:`~mmkd_plugins.datasets.transforms.ReplayStoredView`)."""

from .pipeline_rewrite import split_pipeline, training_dataset_with_pipeline, use_soft_label_store
from .store import VIEW_KEY, SoftLabelStore, bytes_per_sample, sample_identity
from .stored_logits import logits_from_soft_labels, top_k_soft_labels
from .teacher_identity import teacher_differences, teacher_identity

__all__ = [
    'split_pipeline', 'training_dataset_with_pipeline', 'use_soft_label_store',
    'SoftLabelStore', 'bytes_per_sample', 'sample_identity', 'logits_from_soft_labels',
    'top_k_soft_labels', 'teacher_differences', 'teacher_identity', 'VIEW_KEY'
]
