"""Evaluate one trained model on its config's test set, keeping what a comparison needs."""

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

from ..checkpoint import load_checkpoint_weights_only
from ..models.module_output_recorder import ModuleOutputRecorder
from ..models.task_adapters import ClassifierAdapter, DenseHeadAdapter
from ..models.teachers import bf16_autocast, build_model_from_config, to_float32


@dataclass
class ModelEvaluation:
    """One model's figures on a test set.

    Attributes:
        label: The model's name in reports.
        task: ``'classification'`` or ``'detection'``.
        parameters: Number of parameters.
        flops: FLOPs of one forward of the first test image (mmengine's counter).
        metrics: Headline metrics in percent: ``top1``, ``top5`` or ``bbox_mAP``,
            ``bbox_mAP_50``, ...
        per_class: Class name -> accuracy (classification) or AP (detection), in percent.
        ms_per_image: Inference time per test image (forward and, for detectors, box decoding).
        logits: What agreement compares: classifier logits (N, C), or a dense detector's class
            scores, one row per position of every level and image (P, A·K); None for other
            detectors.
        confusion: Classification only: counts, rows = true class, columns = predicted,
            shape (C, C).
    """
    label: str
    task: str
    parameters: int
    flops: Optional[float]
    metrics: Dict[str, float]
    per_class: Dict[str, float]
    ms_per_image: float
    logits: Optional[torch.Tensor]
    confusion: Optional[torch.Tensor] = None


def count_flops(model: torch.nn.Module, inputs: torch.Tensor) -> Optional[float]:
    """FLOPs of ``model(inputs)`` for one image, or None if mmengine cannot trace it."""
    try:
        info = get_model_complexity_info(model, inputs=(inputs[:1], ), show_table=False,
                                         show_arch=False)
    except Exception:  # tracing fails for some custom ops; the report then says n/a
        return None
    return float(info['flops'])


def evaluate_model(config: Config, checkpoint: str, label: str, channels_last: bool = False,
                   bf16: bool = False) -> ModelEvaluation:
    """Build ``config``'s model, load ``checkpoint`` strictly and run its test set.

    Args:
        config: A stock mmpretrain classifier or mmdet one-stage/two-stage detector config,
            e.g. the ``student_config.py`` a distillation run exports.
        checkpoint: Its weights (``student_final.pth``, a teacher checkpoint, ...).
        label: The model's name in reports.
        channels_last: Run the model and its inputs in channels-last memory format, as the
            distiller's ``teacher=dict(channels_last=True)`` does.
        bf16: Run the network under bfloat16 autocast, as the distiller's
            ``teacher=dict(bf16=True)`` does, with every head's outputs in float32 (the
            distiller's losses, and here the post-processing, get float32 scores).
    """
    init_default_scope(config.get('default_scope', 'mmengine'))
    model = build_model_from_config(config)
    weights = load_checkpoint_weights_only(checkpoint, map_location='cpu')
    model.load_state_dict(weights.get('state_dict', weights), strict=True)
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    dataloader = Runner.build_dataloader(config.test_dataloader)
    parameters = sum(p.numel() for p in model.parameters())
    with _float32_for_post_processing(model, bf16):
        if ClassifierAdapter.supports(model):
            return _evaluate_classifier(model, dataloader, label, parameters, channels_last,
                                        bf16)
        return _evaluate_detector(model, dataloader, config, label, parameters, channels_last,
                                  bf16)


@contextmanager
def _float32_for_post_processing(model: torch.nn.Module, enabled: bool) -> Iterator[None]:
    """While active (and ``enabled``), the outputs of every module whose class name ends with
    ``Head`` (mmpretrain's classification heads, mmdet's dense, RPN and RoI box heads) are cast to
    float32, so that predictions are decoded (and boxes suppressed) in float32, and so are the
    inputs of RoI extractors (mmcv's RoIAlign takes float32 features, as the distiller's two-stage
    teachers give it)."""
    handles = []
    for module in model.modules() if enabled else []:
        name = type(module).__name__
        if name.endswith('Head'):
            handles.append(module.register_forward_hook(
                lambda _, __, outputs: to_float32(outputs)))
        elif name.endswith('RoIExtractor'):
            handles.append(module.register_forward_pre_hook(
                lambda _, inputs: to_float32(inputs)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class _TestPass:
    """One pass over a test set without autograd, with a progress bar: yields each raw batch, its
    preprocessed data and the timed ``forward(data)`` (in channels-last format and under bf16
    autocast when asked); counts FLOPs on the first batch."""

    def __init__(self, model, dataloader, forward, channels_last: bool = False,
                 bf16: bool = False) -> None:
        self.model, self.dataloader, self.forward = model, dataloader, forward
        self.channels_last, self.bf16 = channels_last, bf16
        self.seconds, self.images, self.flops = 0.0, 0, None

    def __iter__(self):
        progress = ProgressBar(len(self.dataloader.dataset))
        with torch.no_grad():
            for batch in self.dataloader:
                data = self.model.data_preprocessor(batch, training=False)
                if self.channels_last:
                    data['inputs'] = data['inputs'].contiguous(memory_format=torch.channels_last)
                if self.flops is None:
                    self.flops = count_flops(self.model, data['inputs'])
                start = time.perf_counter()
                with bf16_autocast(data['inputs'].device.type, self.bf16):
                    outputs = to_float32(self.forward(data))
                self.seconds += time.perf_counter() - start
                self.images += len(data['inputs'])
                progress.update(len(data['inputs']))
                yield batch, data, outputs

    @property
    def ms_per_image(self) -> float:
        return 1000 * self.seconds / max(self.images, 1)


def _evaluate_classifier(model, dataloader, label: str, parameters: int, channels_last: bool,
                         bf16: bool) -> ModelEvaluation:
    classes = list(dataloader.dataset.metainfo['classes'])
    logit_batches: List[torch.Tensor] = []
    label_batches: List[torch.Tensor] = []
    test_pass = _TestPass(model, dataloader, lambda data: model(data['inputs'], mode='tensor'),
                          channels_last, bf16)
    for _, data, batch_logits in test_pass:
        logit_batches.append(batch_logits)
        label_batches.append(torch.cat([sample.gt_label for sample in data['data_samples']]))
    logits, labels = torch.cat(logit_batches), torch.cat(label_batches)
    confusion = torch.zeros(len(classes), len(classes), dtype=torch.long)
    confusion.index_put_((labels, logits.argmax(dim=1)), torch.tensor(1), accumulate=True)
    top5 = (logits.topk(min(5, logits.shape[1]), dim=1).indices == labels[:, None]).any(dim=1)
    per_class = 100 * confusion.diag() / confusion.sum(dim=1).clamp_min(1)
    return ModelEvaluation(
        label=label, task='classification', parameters=parameters, flops=test_pass.flops,
        metrics=dict(top1=100 * confusion.diag().sum().item() / len(labels),
                     top5=100 * top5.float().mean().item()),
        per_class=dict(zip(classes, per_class.tolist())),
        ms_per_image=test_pass.ms_per_image, logits=logits, confusion=confusion)


def _evaluate_detector(model, dataloader, config: Config, label: str, parameters: int,
                       channels_last: bool, bf16: bool) -> ModelEvaluation:
    evaluator = Evaluator(dict(config.test_evaluator, classwise=True))
    evaluator.dataset_meta = dataloader.dataset.metainfo
    # A dense head's class scores, for agreement, are recorded on the way through predict().
    dense = DenseHeadAdapter.supports(model)
    recorder = ModuleOutputRecorder(model, DenseHeadAdapter.recorded_modules(model) if dense
                                    else ())
    rows: List[torch.Tensor] = []
    test_pass = _TestPass(model, dataloader, lambda data: model(**data, mode='predict'),
                          channels_last, bf16)
    with recorder:
        for batch, _, outputs in test_pass:
            evaluator.process(data_samples=outputs, data_batch=batch)
            if dense:
                rows.extend(DenseHeadAdapter.student_logits(recorder))
    results = evaluator.evaluate(len(dataloader.dataset))
    classes = list(dataloader.dataset.metainfo['classes'])
    prefix = next(key.split('/')[0] for key in results if key.endswith('bbox_mAP'))
    return ModelEvaluation(
        label=label, task='detection', parameters=parameters, flops=test_pass.flops,
        metrics={key.split('/')[1]: 100 * value for key, value in results.items()
                 if key.split('/')[1].startswith('bbox_mAP') and value >= 0},
        per_class={name: 100 * float(results[f'{prefix}/{name}_precision'])
                   for name in classes if f'{prefix}/{name}_precision' in results},
        ms_per_image=test_pass.ms_per_image,
        logits=torch.cat(rows) if rows else None)
