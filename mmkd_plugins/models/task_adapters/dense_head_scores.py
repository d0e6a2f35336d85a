"""What the first output of an mmdet dense head's forward holds: class logits or probabilities.

The distillation losses of one-stage detectors compare the per-level class maps that a head's
forward returns first, through a sigmoid. That is right for heads whose maps are logits (the head
predicts with their sigmoid); a head whose forward already applies the sigmoid (CenterNet's
heatmaps, TOOD's geometric mean of two sigmoids) must be compared through the logits of its maps,
else the losses compare ``sigmoid(p)``. Neither a loss setting nor the values tell the two apart
reliably, so the kind is known per head class, read off its forward, and a head that is not known
(or overrides the forward of a known one) is refused at build time.
"""

from typing import Dict

LOGITS = 'logits'
PROBABILITIES = 'probabilities'

# mmdet head class -> what its forward's first output holds, per level (N, A·K, H, W): the
# dense heads of the model-zoo sweep's one-stage families and CenterNet, each checked against
# its forward (tests). Every LOGITS head predicts with the sigmoid of these maps (some times a
# centerness, objectness or IoU factor, which the class scores do not include). Subclasses that
# keep the forward (FreeAnchor, PISA, NAS-FCOS, LD, LAD heads) are known through these.
DENSE_HEAD_SCORES: Dict[str, str] = {
    'RetinaHead': LOGITS,
    'RetinaSepBNHead': LOGITS,
    'FSAFHead': LOGITS,
    'FCOSHead': LOGITS,
    'AutoAssignHead': LOGITS,
    'ATSSHead': LOGITS,
    'PAAHead': LOGITS,
    'GFLHead': LOGITS,
    'DDODHead': LOGITS,
    'VFNetHead': LOGITS,
    'FoveaHead': LOGITS,
    'RepPointsHead': LOGITS,
    'CenterNetUpdateHead': LOGITS,
    'CornerHead': LOGITS,  # the top-left corner heatmaps
    'CentripetalHead': LOGITS,
    'YOLOXHead': LOGITS,
    'YOLOFHead': LOGITS,  # already combined with the objectness, as logits
    'RTMDetSepBNHead': LOGITS,  # with objectness: inverse_sigmoid of the combined probabilities
    'RTMDetInsSepBNHead': LOGITS,  # RTMDet-Ins: class maps first, then boxes, kernels, masks
    'CenterNetHead': PROBABILITIES,  # the centre heatmaps, after a sigmoid in forward_single
    'TOODHead': PROBABILITIES,  # sqrt(sigmoid(class logits) · sigmoid(class probability))
}

# mmdet head class -> why its forward's first output is no per-class sigmoid map to compare.
NOT_SIGMOID_CLASS_MAPS: Dict[str, str] = {
    'YOLOV3Head': "its forward returns one map per level holding each anchor's box offsets, "
                  'objectness and class scores together',
    'SSDHead': 'its class scores are a softmax over the classes and the background',
}

FORWARD_METHODS = ('forward', 'forward_single')


def dense_head_scores(head, field: str) -> str:
    """Whether ``head``'s class maps are :data:`LOGITS` or :data:`PROBABILITIES`.

    A head of a class in :data:`DENSE_HEAD_SCORES` is known; so is a subclass of one that keeps
    its ``forward`` and ``forward_single``.

    Args:
        head: An mmdet dense head.
        field: Where the head's model sits in the config, for errors.

    Raises:
        ValueError: the head's first output is no per-class sigmoid map (see
            :data:`NOT_SIGMOID_CLASS_MAPS`), or its kind is not known; the message says why.
    """
    name = type(head).__name__
    for known in type(head).__mro__:
        if known.__name__ in NOT_SIGMOID_CLASS_MAPS:
            raise ValueError(f'{field}: the {name} cannot be distilled by its class scores: '
                             f'{NOT_SIGMOID_CLASS_MAPS[known.__name__]}')
        if known.__name__ not in DENSE_HEAD_SCORES:
            continue
        overridden = [method for method in FORWARD_METHODS
                      if getattr(type(head), method, None) is not getattr(known, method, None)]
        if overridden:
            raise ValueError(f'{field}: the {name} overrides {" and ".join(overridden)} of '
                             f'{known.__name__}, so whether its class maps are logits or '
                             'probabilities is not known; add it to mmkd_plugins.models.'
                             'task_adapters.dense_head_scores.DENSE_HEAD_SCORES with what its '
                             'forward returns first')
        return DENSE_HEAD_SCORES[known.__name__]
    raise ValueError(f'{field}: whether the class maps of a {name} are logits or '
                     'probabilities is not known (known heads: '
                     f'{", ".join(sorted(DENSE_HEAD_SCORES))}); add it to mmkd_plugins.models.'
                     'task_adapters.dense_head_scores.DENSE_HEAD_SCORES with what its forward '
                     'returns first')
