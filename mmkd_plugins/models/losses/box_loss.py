"""Box distillation: L1 and generalized IoU between the boxes two detectors predict for the same
points (DETR-family distillation boxes), as DETR's own box losses weigh them."""

import torch
from torch import nn

from mmkd_plugins.registry import MODELS
from .probabilities import at_least_float32


def corners(boxes: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) boxes as (x1, y1, x2, y2).

    Args:
        boxes: Shape (N, 4).

    Returns:
        Shape (N, 4).
    """
    centre, size = boxes[:, :2], boxes[:, 2:]
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


def generalized_iou(boxes: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """GIoU of each pair of rows (Rezatofighi et al., CVPR 2019): IoU minus the share of the
    smallest enclosing box that the union leaves empty, in [-1, 1].

    Args:
        boxes: (N, 4) as (x1, y1, x2, y2).
        others: (N, 4) as (x1, y1, x2, y2).

    Returns:
        Shape (N,).
    """
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    other_area = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    overlap = (torch.min(boxes[:, 2:], others[:, 2:])
               - torch.max(boxes[:, :2], others[:, :2])).clamp(min=0)
    intersection = overlap[:, 0] * overlap[:, 1]
    union = area + other_area - intersection
    enclosing = (torch.max(boxes[:, 2:], others[:, 2:])
                 - torch.min(boxes[:, :2], others[:, :2])).clamp(min=0)
    enclosing_area = enclosing[:, 0] * enclosing[:, 1]
    eps = torch.finfo(boxes.dtype).eps
    iou = intersection / union.clamp(min=eps)
    return iou - (enclosing_area - union) / enclosing_area.clamp(min=eps)


def box_distillation_loss(student_boxes: torch.Tensor, teacher_boxes: torch.Tensor,
                          l1_weight: float = 5.0, giou_weight: float = 2.0) -> torch.Tensor:
    """``l1_weight · (1/N) Σ_i ‖b_s,i − b_t,i‖₁ + giou_weight · (1/N) Σ_i (1 − GIoU(b_s,i, b_t,i))``
    with the teacher's boxes as constant targets: DETR's box losses (L1 summed over the four
    normalized coordinates, then averaged over boxes; GIoU loss on the corners), the teacher's boxes
    in place of the matched ground truth. Computed in fp32.

    Args:
        student_boxes: (N, 4) normalized (cx, cy, w, h).
        teacher_boxes: (N, 4) normalized (cx, cy, w, h); the target.
        l1_weight: Weight of the L1 term (DETR's 5).
        giou_weight: Weight of the GIoU term (DETR's 2).

    Returns:
        Scalar tensor.
    """
    student = at_least_float32(student_boxes)
    teacher = at_least_float32(teacher_boxes).detach()
    l1 = (student - teacher).abs().sum(dim=1).mean()
    giou = (1 - generalized_iou(corners(student), corners(teacher))).mean()
    return l1_weight * l1 + giou_weight * giou


@MODELS.register_module()
class BoxDistillationLoss(nn.Module):
    """:func:`box_distillation_loss` as a module, for ``distill_losses`` entries comparing
    ``student_output='boxes', teacher_output='boxes'`` (DETR-family students).

    Args:
        l1_weight: Weight of the L1 term. Defaults to 5.0 (DETR's).
        giou_weight: Weight of the GIoU term. Defaults to 2.0 (DETR's).
        loss_weight: Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, l1_weight: float = 5.0, giou_weight: float = 2.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.l1_weight, self.giou_weight, self.loss_weight = l1_weight, giou_weight, loss_weight

    def forward(self, student_boxes: torch.Tensor, teacher_boxes: torch.Tensor) -> torch.Tensor:
        """The loss of (N, 4) normalized (cx, cy, w, h) boxes; a scalar."""
        return self.loss_weight * box_distillation_loss(student_boxes, teacher_boxes,
                                                        self.l1_weight, self.giou_weight)
