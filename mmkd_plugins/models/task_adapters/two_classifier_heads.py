"""Classifier heads with a second, "distillation" classifier (DeiT, LeViT, EfficientFormer).

These heads (Touvron et al., 2021, DeiT; Graham et al., 2021, LeViT; Li et al., 2022,
EfficientFormer) have a class classifier and a distillation classifier (on DeiT's distillation
token; on the same pooled features for LeViT and EfficientFormer). In their papers the class
classifier learns the labels and the distillation classifier learns the teacher (hard
distillation on the teacher's argmax: :class:`~mmkd_plugins.models.losses.HardDistillationLoss`);
the prediction is the mean of both. mmpretrain predicts with that mean but cannot train them:
LeViT's and EfficientFormer's training forward raises, DeiT's trains the mean on the labels
(and warns). The Distiller trains them as the papers do: the student's task loss on the class
logits, every distillation loss on the distillation logits; predictions and the exported
checkpoint stay the stock head's.
"""

from typing import NamedTuple, Optional, Tuple, cast

import torch
from mmengine.model import BaseModel, BaseModule
from torch import nn


class TwoClassifierLayout(NamedTuple):
    """Where a head keeps its two classifiers.

    Attributes:
        class_layer: The class classifier's module path in the head.
        distillation_layer: The distillation classifier's module path in the head.
        switch: The head attribute that turns the distillation classifier on (None: always).
    """

    class_layer: str
    distillation_layer: str
    switch: Optional[str]


# Exact classes: a subclass may compute something else.
TWO_CLASSIFIER_HEADS = {
    'DeiTClsHead': TwoClassifierLayout('layers.head', 'layers.head_dist', None),
    'LeViTClsHead': TwoClassifierLayout('head', 'head_dist', 'distillation'),
    'EfficientFormerClsHead': TwoClassifierLayout('head', 'dist_head', 'dist'),
}


def two_classifier_layout(head: nn.Module) -> Optional[TwoClassifierLayout]:
    """The layout of ``head``'s two classifiers, or None for a head with one (or with its
    distillation classifier switched off)."""
    layout = TWO_CLASSIFIER_HEADS.get(type(head).__name__)
    if layout is None or (layout.switch is not None and not getattr(head, layout.switch)):
        return None
    return layout


def class_and_distillation_logits(head: BaseModule,
                                  features: tuple) -> Tuple[torch.Tensor, torch.Tensor]:
    """Both classifiers' logits, from the head's own ``pre_logits``.

    Args:
        head: A head with two classifiers (see :func:`two_classifier_layout`).
        features: The backbone's (and neck's) outputs, as the head's forward takes them.

    Returns:
        Class logits and distillation logits, each shape (B, num_classes). Their mean is the
        stock head's prediction.
    """
    layout = cast(TwoClassifierLayout, two_classifier_layout(head))  # head has two classifiers
    pre_logits = head.pre_logits(features)
    # DeiT: (class token, distillation token); the others: one pooled feature for both
    class_input, distillation_input = (pre_logits if isinstance(pre_logits, tuple)
                                       else (pre_logits, pre_logits))
    return (head.get_submodule(layout.class_layer)(class_input),
            head.get_submodule(layout.distillation_layer)(distillation_input))


def two_classifier_loss(classifier: BaseModel, inputs: torch.Tensor,
                        data_samples: list) -> Tuple[dict, torch.Tensor]:
    """A two-classifier student's training forward, as the papers train it: the head's own loss (its
    config's ``loss``, Mixup/CutMix soft labels included) on the class logits.

    Args:
        classifier: An mmpretrain ``ImageClassifier`` with such a head.
        inputs: The preprocessed batch, (B, 3, H, W).
        data_samples: The batch's data samples.

    Returns:
        The task losses, and the distillation logits (B, num_classes) that the distillation
        losses compare with the teacher.
    """
    features = classifier.extract_feat(inputs)
    class_logits, distillation_logits = class_and_distillation_logits(classifier.head, features)
    return classifier.head._get_loss(class_logits, data_samples), distillation_logits
