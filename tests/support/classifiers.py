"""Classification test support: the demo student and teacher configs as a distiller, and batches of
random digits-sized images."""

from typing import Optional

import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample
from torch import nn

from mmkd_plugins.models import Distiller
from ..conftest import STUDENT_CONFIG, TEACHER_CONFIG

KD = dict(loss_kd=dict(type='KDLoss', tau=4.0))


def student_model_cfg(config: str = STUDENT_CONFIG) -> dict:
    cfg = Config.fromfile(config)
    return dict(cfg.model, data_preprocessor=cfg.data_preprocessor)


def build_distiller(teacher_checkpoint, losses=None, student=None, **teacher_kwargs):
    teacher = dict(config=TEACHER_CONFIG, checkpoint=teacher_checkpoint, **teacher_kwargs)
    return Distiller(student=student or student_model_cfg(), teacher=teacher,
                     distill_losses=losses or KD)


def make_batch(batch_size=4, size=16, num_classes=10, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, size, size), generator=generator, dtype=torch.uint8)
              for _ in range(batch_size)]
    samples = [DataSample().set_gt_label(i % num_classes) for i in range(batch_size)]
    return dict(inputs=inputs, data_samples=samples)


def backbone_call_order(model: nn.Module, data: dict, models: Optional[dict] = None) -> list:
    """Which backbones a distillation forward (``mode='loss'``) runs, by name, in the order they
    start; ``models`` maps names to the models watched (default: the distiller's ``student`` and
    ``teacher``)."""
    order = []
    models = models or dict(student=model.student, teacher=model.teacher)
    handles = [watched.backbone.register_forward_pre_hook(
        lambda module, args, name=name: order.append(name)) for name, watched in models.items()]
    try:
        model(**data, mode='loss')
    finally:
        for handle in handles:
            handle.remove()
    return order


def identical_inputs_dist_residual(logits: torch.Tensor, activation: str = 'softmax',
                                   eps: float = 1e-8) -> float:
    """DIST (beta = gamma = tau = 1) of two identical (N, C) logit sets, by hand."""
    logits = logits.double()
    y = (logits.softmax(dim=1) if activation == 'softmax' else logits.sigmoid()).numpy()
    rows = ((y - y.mean(axis=1, keepdims=True))**2).sum(axis=1)
    columns = ((y - y.mean(axis=0, keepdims=True))**2).sum(axis=0)
    return float((eps / (rows + eps)).mean() + (eps / (columns + eps)).mean())


def assert_bf16_close(got: torch.Tensor, expected: torch.Tensor) -> None:
    """``got`` is float32, differs from ``expected`` (so bf16 ran) by bf16 rounding only."""
    assert got.dtype == torch.float32
    assert not torch.equal(got, expected)
    torch.testing.assert_close(got, expected, rtol=0.05, atol=0.02 * expected.abs().max().item())
