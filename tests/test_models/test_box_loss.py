"""The box distillation loss: DETR's L1 + GIoU box losses (Carion et al., ECCV 2020; GIoU:

Rezatofighi et al., CVPR 2019) with the teacher's boxes as targets, checked against hand-computed
values.
"""

import pytest
import torch

from mmkd_plugins.models.losses import BoxDistillationLoss, box_distillation_loss, generalized_iou


def test_generalized_iou_of_hand_computed_pairs():
    # (0,0)-(2,2) and (1,1)-(3,3): overlap 1, union 7, enclosing 9 -> 1/7 - 2/9
    # (0,0)-(1,1) and (2,0)-(3,1): apart, union 2, enclosing 3 -> 0 - 1/3
    boxes = torch.tensor([[0., 0., 2., 2.], [0., 0., 1., 1.], [0., 0., 1., 1.]])
    others = torch.tensor([[1., 1., 3., 3.], [2., 0., 3., 1.], [0., 0., 1., 1.]])
    expected = torch.tensor([1 / 7 - 2 / 9, -1 / 3, 1.0])
    torch.testing.assert_close(generalized_iou(boxes, others), expected)


def test_the_loss_is_weighted_l1_per_box_plus_weighted_giou_loss_and_teacher_constant():
    student = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.2, 0.2]], requires_grad=True)
    teacher = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.4, 0.3, 0.2, 0.2]], requires_grad=True)
    # box 2: L1 0.1; corners (0.2,0.2)-(0.4,0.4) vs (0.3,0.2)-(0.5,0.4): overlap 0.02,
    # union 0.06, enclosing 0.06 -> GIoU 1/3
    l1 = (0.0 + 0.1) / 2
    giou_loss = (0.0 + (1 - 1 / 3)) / 2
    loss = box_distillation_loss(student, teacher, l1_weight=5.0, giou_weight=2.0)
    assert loss.item() == pytest.approx(5 * l1 + 2 * giou_loss, rel=1e-5)
    loss.backward()
    assert teacher.grad is None
    # d/d cx of box 2: L1 -5/2 (student left of the teacher); GIoU: moving right adds overlap
    assert student.grad[1, 0] < 0 and torch.isfinite(student.grad).all()
    module = BoxDistillationLoss(l1_weight=1.0, giou_weight=0.0, loss_weight=2.0)
    assert module(student, teacher).item() == pytest.approx(2 * l1, rel=1e-5)


def test_identical_boxes_cost_nothing_and_bf16_boxes_are_compared_in_float32():
    boxes = torch.tensor([[0.5, 0.4, 0.3, 0.2], [0.1, 0.9, 0.05, 0.1]])
    assert box_distillation_loss(boxes, boxes).item() == pytest.approx(0.0, abs=1e-6)
    loss = box_distillation_loss(boxes.bfloat16(), (boxes + 0.01).bfloat16())
    assert loss.dtype == torch.float32 and loss.item() > 0
