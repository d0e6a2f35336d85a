"""Measure what distillation costs: one process, variants interleaved, medians and ratios.

For a classification pair (ResNet-34 -> ResNet-18, 224x224) and a detection pair (RetinaNet
R101 -> R50) (and, with ``--pairs classification_resnet101_teacher``, the classification student
with a ResNet-101 teacher: the KD step live and from a soft-label store; with ``--pairs convnext
deit rtmdet``, the block-wise configs of other layouts: ConvNeXt-V2 nano -> atto, DeiT-S -> Ti,
RTMDet-S -> tiny, and with ``--pairs swin_resnet18`` one across architectures, Swin-T -> ResNet-18,
each against DIST on the same pair), built from the model-zoo distillation
configs with random weights (speed does not depend on them), it times
per iteration, after warm-up, interleaving A B C D A B C D ...:

* ``student``: the stock student's training step (forward, loss, backward, SGD step);
* ``teacher``: the teacher's whole forward under ``torch.no_grad()`` (``mode='tensor'``), the
  issue's floor;
* ``teacher_logits``: what the distiller's teacher computes (its ``run_teacher``, under
  ``torch.no_grad()``): the same for classifiers, the class branch only for dense detectors (no
  box branch);
* ``teacher_channels_last``: that computation with the teacher and its input in channels-last
  memory format (the distiller's ``teacher=dict(..., channels_last=True)`` option; the
  distillation variants below use the default format);
* ``teacher_bf16``: that computation under bfloat16 autocast (the ``bf16=True`` option);
* ``teacher_inference_mode``: that computation under ``torch.inference_mode()`` instead of
  ``no_grad``, plus the copy of its logits that the losses would need (inference tensors
  cannot be saved for backward);
* ``kd`` / ``dist``: the distiller's training step with KDLoss / DISTLoss;
* ``blockwise``: block-wise distillation's training step (all four hybrids, the pair's shipped
  block-wise config);
* ``blockwise_k2`` / ``blockwise_k1``: the same with ``hybrids=dict(per_step=2)`` / ``1`` (two /
  one of the four hybrids per step, in turn); one call is a whole turn (2 / 4 steps) and its
  time is divided by its steps, so that the figure is the mean step over the turn;
* ``blockwise_late`` / ``blockwise_last``: the same with ``hybrids=dict(stages=[3, 4])`` /
  ``[4]``: only the hybrids that run few teacher stages (N_3: the teacher's last stage and
  head; N_4: its head), every step;
* ``blockwise_recomputed`` / ``blockwise_late_recomputed`` / ``blockwise_last_recomputed``:
  ``blockwise`` / ``blockwise_late`` / ``blockwise_last`` with
  ``hybrids=dict(recompute_teacher_tails=True)`` (the hybrids' teacher parts keep no
  activations for backward and run their forward again there);
* ``blockwise_no_task`` / ``blockwise_late_no_task`` / ``blockwise_last_no_task``: the same
  with ``hybrids=dict(task_losses=False)`` (the hybrids have no head loss of their own, so a
  dense detector's hybrids run only the teacher head's class branch);
* ``blockwise_lean`` / ``blockwise_late_lean`` / ``blockwise_last_lean`` /
  ``blockwise_last_no_task_lean``: ``blockwise`` / ``blockwise_late`` / ``blockwise_last`` /
  ``blockwise_last_no_task`` with
  ``recompute_logit_terms=True`` (the distillation and cross terms keep only their logit inputs
  for backward and run their forward again there);
* ``kd_cached``: the KD step with the teacher-logits cache warm (a second epoch of a
  deterministic pipeline: no teacher forward at all);
* ``kd_bf16``: the KD step with a bf16 teacher;
* ``kd_stored`` (classification): the KD step reading the teacher's top-10 probabilities from a
  soft-label store (``model.soft_labels``: the teacher is never built, so the figure holds for a
  teacher of any size); ``vs_student = t_kd_stored / t_student``.

and prints medians and ``overhead = t_distill / (t_student + t_teacher)``: 1.0 means
distillation costs exactly one student step plus one teacher forward; ``overhead_own_teacher``
uses ``t_teacher_logits`` instead, the floor of what the distiller asks of its teacher.
Block-wise also gets ``vs_dist = t_blockwise / t_dist`` (its hybrids run teacher stages *with*
autograd, so it cannot meet the single-forward floor), the cached and bf16 KD steps
``speedup = t_kd / t_variant``.

Mixed precision (CUDA only): ``--amp fp16`` or ``--amp bf16`` trains every step through
mmengine's ``AmpOptimWrapper`` with that dtype (as ``tools/train.py --amp``) and runs the teacher
variants under autocast to it.

Robustness: warm-up runs at least ``--warmup`` rounds and goes on (up to ``--max-warmup``)
until every variant's time changed by less than 5 % from the previous round; then ``--rounds``
measurements of ``--iters`` interleaved rounds each. Every figure is the median over the
rounds of each round's median (ratios computed within each round), with its range over the
rounds (``spread``: min and max). Thread settings are printed and saved. ``--profile`` adds an
operator-level account of where a KD step's time goes beyond its two parts (the student step
and ``teacher_logits``), from ``torch.profiler``.

Peak memory: on CUDA, each variant's ``max_memory_allocated`` in the timing process; on CPU,
each variant runs in a fresh child process that measures its resident-set peak above the level
after building the models (``VmHWM`` reset through ``/proc/self/clear_refs``), so that memory
kept by one variant's allocator is not counted for another. The child fixes glibc's mmap
threshold at 64 KiB, so that every tensor buffer is its own mapping, returned to the system when
freed: the resident-set peak is then the peak of live tensors, as ``max_memory_allocated`` is
on CUDA, and not also whatever freed memory the allocator happens to keep (which made the
figures vary by several percent from run to run). ``memory_ratio = peak_distill /
(peak_student + peak_teacher)``. Results go to a JSON file. Runs unchanged on CPU and GPU.

Example:
    python tools/benchmark.py --out work_dirs/benchmark.json
    python tools/benchmark.py --pairs classification --rounds 1 --iters 2 --profile
"""
import argparse
import ctypes
import gc
import json
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmkd_plugins  # noqa: F401
from mmkd_plugins.models import Distiller
from mmkd_plugins.models.teachers import build_model_from_config, load_model_config
from mmkd_plugins.registry import MODELS
from mmkd_plugins.soft_labels import VIEW_KEY, SoftLabelStore, teacher_identity
from mmkd_plugins.soft_labels.store import store_header
from mmkd_plugins.testing import SHAPE_CLASSES, write_shapes_coco

warnings.filterwarnings('ignore')
REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAIRS = {
    'classification': dict(
        kd='configs/kd/kd_resnet34_resnet18_8xb32_in1k.py',
        dist='configs/dist/dist_resnet34_resnet18_8xb32_in1k.py',
        blockwise='configs/blockwise/blockwise_resnet34_resnet18_8xb32_in1k.py',
        scope='mmpretrain', task='classification'),
    # the classification pair's student with a ResNet-101 teacher (7.8 GFLOPs, 4.3 x the
    # student's 1.8), for the store: the KD step without the teacher's cost
    'classification_resnet101_teacher': dict(
        kd='configs/kd/kd_resnet34_resnet18_8xb32_in1k.py',
        teacher_config='mmpretrain::resnet/resnet101_8xb32_in1k.py',
        variants=('kd', 'kd_stored'), scope='mmpretrain', task='classification'),
    'detection': dict(
        kd='configs/kd/kd_retinanet_r101_retinanet_r50_fpn_1x_coco.py',
        dist='configs/dist/dist_retinanet_r101_retinanet_r50_fpn_1x_coco.py',
        blockwise='configs/blockwise/blockwise_retinanet_r101_retinanet_r50_fpn_1x_coco.py',
        scope='mmdet', task='detection'),
    # block-wise on other stage layouts, against DIST on the same pair (the block-wise config's
    # student and teacher in a Distiller with DIST_OF_TASK's loss: no DIST config is shipped)
    'convnext': dict(
        blockwise='configs/blockwise/blockwise_convnext-v2-nano_convnext-v2-atto_32xb32_in1k.py',
        variants=('dist', 'blockwise'), scope='mmpretrain', task='classification'),
    'deit': dict(
        blockwise='configs/blockwise/blockwise_deit-small_deit-tiny_4xb256_in1k.py',
        variants=('dist', 'blockwise'), scope='mmpretrain', task='classification'),
    'rtmdet': dict(
        blockwise='configs/blockwise/blockwise_rtmdet-s_rtmdet-tiny_8xb32-300e_coco.py',
        variants=('dist', 'blockwise'), scope='mmdet', task='detection'),
    # across architectures: the student's stage maps laid out as the teacher's Swin tokens
    'swin_resnet18': dict(
        blockwise='configs/blockwise/blockwise_swin-tiny_resnet18_8xb32_in1k.py',
        variants=('dist', 'blockwise'), scope='mmpretrain', task='classification'),
}
# the DIST of a pair that ships only a block-wise config: the shipped DIST configs' losses
DIST_OF_TASK = dict(
    classification=dict(type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=2.0),
    detection=dict(type='DISTLoss', beta=1.0, gamma=1.0, tau=1.0, loss_weight=1.0,
                   activation='sigmoid'))


TEACHER_VARIANTS = ('teacher', 'teacher_logits', 'teacher_channels_last', 'teacher_bf16',
                    'teacher_inference_mode')
DISTILLED = ('kd', 'dist', 'blockwise', 'blockwise_k2', 'blockwise_k1', 'blockwise_late',
             'blockwise_last', 'blockwise_recomputed', 'blockwise_late_recomputed',
             'blockwise_last_recomputed', 'blockwise_no_task', 'blockwise_late_no_task',
             'blockwise_last_no_task', 'blockwise_lean', 'blockwise_late_lean',
             'blockwise_last_lean', 'blockwise_last_no_task_lean', 'kd_cached', 'kd_bf16',
             'kd_stored')
FLOORS = ('student', 'teacher', 'teacher_logits')  # measured whatever --variants asks
CLASSIFICATION_ONLY = ('kd_stored', )  # a soft-label store serves classifiers
BLOCKWISE = tuple(variant for variant in DISTILLED if variant.startswith('blockwise'))
VARIANTS = ('student', ) + TEACHER_VARIANTS + DISTILLED
# variant -> options of the distiller's teacher (none for the others)
TEACHER_OPTIONS = dict(teacher_channels_last=dict(channels_last=True),
                       teacher_bf16=dict(bf16=True), kd_bf16=dict(bf16=True))
# variant -> options of block-wise hybrids: in turn, or a fixed subset of the cheap ones,
# each also with the teacher tails' activations recomputed in backward, or without the
# hybrids' task losses
HYBRIDS_OPTIONS = dict(blockwise_k2=dict(per_step=2), blockwise_k1=dict(per_step=1),
                       blockwise_late=dict(stages=[3, 4]), blockwise_last=dict(stages=[4]),
                       blockwise_recomputed=dict(recompute_teacher_tails=True),
                       blockwise_late_recomputed=dict(stages=[3, 4],
                                                      recompute_teacher_tails=True),
                       blockwise_last_recomputed=dict(stages=[4],
                                                      recompute_teacher_tails=True),
                       blockwise_no_task=dict(task_losses=False),
                       blockwise_late_no_task=dict(stages=[3, 4], task_losses=False),
                       blockwise_last_no_task=dict(stages=[4], task_losses=False))
# a variant ending in this is the variant before it with the block-wise distiller's logit terms
# recomputed in backward (its hybrids options are that variant's)
LEAN = '_lean'
AMP_DTYPES = dict(fp16=torch.float16, bf16=torch.bfloat16)  # --amp: mixed precision on CUDA
SETTLED = 0.05  # warm-up ends when no variant's time moved by more than this between rounds
# glibc settings of a CPU memory probe: allocations of 64 KiB and more get their own mapping
# (a fixed threshold, not glibc's adaptive one) and the heap top is returned at once, so that
# the resident set follows the live tensors.
LIVE_MEMORY_MALLOC = dict(MALLOC_MMAP_THRESHOLD_=str(64 * 1024), MALLOC_TRIM_THRESHOLD_='0')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark the cost of distillation')
    parser.add_argument('--pairs', nargs='+', choices=list(PAIRS),
                        default=['classification', 'detection'])
    parser.add_argument('--iters', type=int, default=6,
                        help='timed interleaved calls per variant in each round')
    parser.add_argument('--rounds', type=int, default=3,
                        help='measurements, each of --iters calls; figures are their median')
    parser.add_argument('--warmup', type=int, default=2, help='untimed rounds first (at least)')
    parser.add_argument('--max-warmup', type=int, default=8,
                        help='untimed rounds at most, while times still move by > 5 %%')
    parser.add_argument('--profile', action='store_true',
                        help='also profile the KD step against the student step and the '
                        'teacher (operator self times)')
    parser.add_argument('--batch-size', type=int, default=32, help='classification batch')
    parser.add_argument('--det-batch-size', type=int, default=2)
    parser.add_argument('--det-image-size', type=int, default=320)
    parser.add_argument('--memory-iters', type=int, default=2,
                        help='steps of each CPU memory probe')
    parser.add_argument('--variants', nargs='+', choices=VARIANTS,
                        help='measure these variants only (plus the floors: '
                        f'{", ".join(FLOORS)}); default: all')
    parser.add_argument('--amp', choices=list(AMP_DTYPES),
                        help='mixed precision of this dtype (CUDA only): steps through '
                        "mmengine's AmpOptimWrapper, teacher forwards under autocast")
    parser.add_argument('--out', default='work_dirs/benchmark.json')
    parser.add_argument('--probe-memory', choices=VARIANTS,
                        help=argparse.SUPPRESS)  # internal: one CPU memory probe (child)
    return parser.parse_args()


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def classification_batch(batch_size: int) -> dict:
    from mmpretrain.structures import DataSample
    generator = torch.Generator().manual_seed(0)
    return dict(
        inputs=[torch.randint(0, 256, (3, 224, 224), generator=generator, dtype=torch.uint8)
                for _ in range(batch_size)],
        data_samples=[DataSample(metainfo={'sample_idx': i, VIEW_KEY: 0}).set_gt_label(i % 1000)
                      for i in range(batch_size)])


def detection_batch(batch_size: int, image_size: int, folder: str) -> dict:
    write_shapes_coco(folder, {'train': batch_size}, image_size=image_size,
                      min_size=image_size // 8, max_size=image_size // 3)
    loader = Runner.build_dataloader(dict(
        batch_size=batch_size, num_workers=0, collate_fn=dict(type='pseudo_collate'),
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='CocoDataset', data_root=folder, ann_file='annotations/train.json',
                     data_prefix=dict(img='train/'), metainfo=dict(classes=SHAPE_CLASSES),
                     pipeline=[dict(type='LoadImageFromFile'),
                               dict(type='LoadAnnotations', with_bbox=True),
                               dict(type='PackDetInputs')])))
    return next(iter(loader))


def pair_config(name: str, method: str) -> Config:
    """Pair ``name``'s distillation config of ``method`` (``'kd'``, ``'dist'``, ``'blockwise'``),
    with its teacher's config replaced where the pair says; a pair without a DIST config gets its
    block-wise config's student and teacher in a ``Distiller`` with :data:`DIST_OF_TASK`'s loss."""
    pair = PAIRS[name]
    if method in pair:
        cfg = Config.fromfile(osp.join(REPO_ROOT, pair[method]))
    elif method == 'dist':
        cfg = Config.fromfile(osp.join(REPO_ROOT, pair['blockwise']))
        cfg.model = Config(dict(type='mmkd_plugins.Distiller', student=cfg.model.student,
                                teacher=cfg.model.teacher,
                                distill_losses=dict(loss_dist=DIST_OF_TASK[pair['task']])))
    else:
        raise ValueError(f'pair {name!r} has no {method} config')
    if pair.get('teacher_config') is not None:
        cfg.model.teacher.config = pair['teacher_config']
    return cfg


def build_distiller(cfg: Config, teacher_checkpoint: str, device: str,
                    teacher_options: dict, hybrids_options: Optional[dict] = None,
                    soft_labels: Optional[str] = None,
                    distiller_options: Optional[dict] = None) -> Distiller:
    model_cfg = cfg.model
    model_cfg.update(distiller_options or {})
    model_cfg.teacher.checkpoint = teacher_checkpoint
    model_cfg.teacher.update(teacher_options)
    if soft_labels is not None:
        model_cfg.soft_labels = dict(store=soft_labels)
    if hybrids_options:
        model_cfg.setdefault('hybrids', {}).update(hybrids_options)
    model_cfg.student.pop('init_cfg', None)
    if 'backbone' in model_cfg.student:
        model_cfg.student.backbone.init_cfg = None
    if cfg.get('data_preprocessor') is not None:
        model_cfg.student.setdefault('data_preprocessor', cfg.data_preprocessor)
    return MODELS.build(model_cfg).to(device)


def random_teacher_checkpoint(cfg: Config, folder: str) -> str:
    teacher = build_model_from_config(load_model_config(cfg.model.teacher.config, 'teacher'))
    path = osp.join(folder, 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, path)
    return path


def random_soft_label_store(cfg: Config, teacher_checkpoint: str, folder: str,
                            samples: int, top_k: int = 10) -> str:
    """A store of random top-k probabilities (one view per sample) for the config's teacher."""
    teacher = dict(cfg.model.teacher, checkpoint=teacher_checkpoint)
    num_classes = cfg.model.student.head.num_classes
    path = osp.join(folder, 'soft_labels')
    store = SoftLabelStore.create_or_continue(path, store_header(
        teacher_identity(teacher), float(next(iter(cfg.model.distill_losses.values())).tau),
        samples, views=1, top_k=top_k, num_classes=num_classes, replayed_transforms=[],
        approximated=[], seed=0))
    generator = torch.Generator().manual_seed(0)
    for index in range(samples):
        probabilities = torch.softmax(torch.randn(num_classes, generator=generator), 0)
        values, classes = probabilities.topk(top_k)
        store.write_sample(index, 0, values.half().numpy()[None], classes.numpy()[None])
    store.mark_complete()
    return path


class Timed(NamedTuple):
    """A variant's call and how many training steps (or forwards) one call makes."""

    run: Callable[[], None]
    steps: int = 1


def step_of(model, batch: dict, steps: int = 1, amp: Optional[str] = None) -> Timed:
    """``steps`` training steps of ``model`` on ``batch`` per call, in mixed precision of the
    ``amp`` dtype (:data:`AMP_DTYPES`) when given."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                                momentum=0.9)
    optim_wrapper = (OptimWrapper(optimizer) if amp is None else
                     AmpOptimWrapper(optimizer=optimizer, dtype=AMP_DTYPES[amp]))

    def run() -> None:
        for _ in range(steps):
            model.train_step(batch, optim_wrapper)

    return Timed(run, steps)


def teacher_forward_of(distiller: Distiller, batch: dict, whole: bool = False,
                       inference_mode: bool = False, amp: Optional[str] = None) -> Timed:
    """The teacher's whole forward (``whole``), or what the distiller asks of it: its own
    ``run_teacher``, with the teacher options it was built with; under ``torch.inference_mode()``
    when asked, then copying the logits, as the losses would need; under CUDA autocast to the
    ``amp`` dtype when given."""
    data = distiller.data_preprocessor(batch, training=True)

    def forward() -> None:
        with (torch.autocast('cuda', dtype=AMP_DTYPES[amp]) if amp else nullcontext()):
            teacher_call()

    def teacher_call() -> None:
        if whole:
            with torch.no_grad():
                distiller.teacher(distiller.teacher_source.inputs(data['inputs']), mode='tensor')
            return
        with torch.inference_mode(inference_mode):
            logits = distiller.run_teacher(data['inputs'], data['data_samples'])['logits']
        if inference_mode:  # the losses need normal tensors: copy the inference tensors
            for level in logits if isinstance(logits, list) else [logits]:
                level.clone()

    return Timed(forward)


def build_variants(name: str, variants: List[str], args: argparse.Namespace,
                   device: str) -> Dict[str, Timed]:
    """One call per variant, each with its own model and optimizer."""
    pair = PAIRS[name]
    init_default_scope(pair['scope'])
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        # the floors (student, teacher) come from the pair's KD config, else its DIST one; one
        # teacher checkpoint serves every method
        floor_method = 'kd' if 'kd' in pair else 'dist'
        floor_cfg = pair_config(name, floor_method)
        checkpoint = random_teacher_checkpoint(floor_cfg, folder)
        batch = (classification_batch(args.batch_size) if pair['task'] == 'classification' else
                 detection_batch(args.det_batch_size, args.det_image_size, folder))
        for variant in variants:
            method = variant.split('_')[0] if variant in DISTILLED else floor_method
            hybrids_options = HYBRIDS_OPTIONS.get(variant.removesuffix(LEAN), {})
            store = (random_soft_label_store(floor_cfg, checkpoint, folder, args.batch_size)
                     if variant == 'kd_stored' else None)
            model = build_distiller(pair_config(name, method), checkpoint, device,
                                    TEACHER_OPTIONS.get(variant, {}), hybrids_options, store,
                                    dict(recompute_logit_terms=True)
                                    if variant.endswith(LEAN) else None)
            if variant == 'student':  # the stock student model, trained on its own
                runs[variant] = step_of(model.student, batch, amp=args.amp)
            elif variant in TEACHER_VARIANTS:
                runs[variant] = teacher_forward_of(
                    model, batch, whole=variant == 'teacher',
                    inference_mode=variant == 'teacher_inference_mode', amp=args.amp)
            else:
                if variant == 'kd_cached':  # as in a second epoch: every sample cached
                    model.enable_teacher_cache()
                    data = model.data_preprocessor(batch, training=True)
                    model.run_teacher(data['inputs'], data['data_samples'])
                per_step = hybrids_options.get('per_step')
                turn = 1 if per_step is None else len(model.hybrids.stages) // per_step
                runs[variant] = step_of(model, batch, steps=turn, amp=args.amp)
    return runs


def timed_call(call: Timed) -> Tuple[float, float]:
    """Seconds per step of one call, and (CUDA) its peak memory in MiB."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    synchronize()
    start = time.perf_counter()
    call.run()
    synchronize()
    seconds = (time.perf_counter() - start) / call.steps
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    return seconds, peak


def warm_up(variants: Dict[str, Timed], least: int, most: int) -> int:
    """Untimed interleaved rounds: at least ``least``, then until no variant's time moved by more
    than :data:`SETTLED` from the previous round (at most ``most``).

    Returns the rounds.
    """
    previous: Dict[str, float] = {}
    rounds = 0
    while True:
        current = {name: timed_call(call)[0] for name, call in variants.items()}
        rounds += 1
        settled = previous and all(abs(current[name] / previous[name] - 1) <= SETTLED
                                   for name in variants)
        if rounds >= most or (rounds >= least and settled):
            return rounds
        previous = current


def measure(variants: Dict[str, Timed], iters: int) -> Dict[str, dict]:
    """One round: ``iters`` interleaved calls of every variant; median seconds per step and (CUDA)
    peak memory in MiB."""
    times: Dict[str, List[float]] = {name: [] for name in variants}
    peaks: Dict[str, float] = {name: 0.0 for name in variants}
    for _ in range(iters):
        for name, call in variants.items():
            seconds, peak = timed_call(call)
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    return {name: dict(median_s=statistics.median(values), all_s=values,
                       peak_mib=peaks[name] if torch.cuda.is_available() else None)
            for name, values in times.items()}


def _status_kib(field: str) -> int:
    with open('/proc/self/status') as file:
        return int(re.search(rf'{field}:\s+(\d+)', file.read()).group(1))


def probe_cpu_memory(name: str, variant: str, args: argparse.Namespace) -> float:
    """In this (fresh) process: MiB of resident memory that ``args.memory_iters`` steps of
    ``variant`` add above the level after building.

    Linux with glibc.
    """
    run = build_variants(name, [variant], args, 'cpu')[variant].run
    gc.collect()
    # Return the memory freed while building (e.g. loaded checkpoints) to the system, so that
    # the steps cannot hide their allocations in it.
    ctypes.CDLL('libc.so.6').malloc_trim(0)
    baseline = _status_kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as file:
        file.write('5')  # reset VmHWM, the peak resident set, to the current size
    for _ in range(args.memory_iters):
        run()
    return (_status_kib('VmHWM') - baseline) / 1024


def cpu_peak_memory(name: str, variants: List[str],
                    args: argparse.Namespace) -> Dict[str, float]:
    """Each variant's CPU memory probe, each in a child process of this script."""
    peaks = {}
    for variant in variants:
        command = [sys.executable, osp.abspath(__file__), '--pairs', name, '--probe-memory',
                   variant, '--batch-size', str(args.batch_size), '--det-batch-size',
                   str(args.det_batch_size), '--det-image-size', str(args.det_image_size),
                   '--memory-iters', str(args.memory_iters)]
        output = subprocess.run(command, check=True, capture_output=True, text=True,
                                env=dict(os.environ, **LIVE_MEMORY_MALLOC)).stdout
        peaks[variant] = json.loads(output.strip().splitlines()[-1])['peak_mib']
    return peaks


def ratios(results: Dict[str, dict]) -> Dict[str, Dict[str, float]]:
    """Per distillation variant, its ratios to the floors and to other variants (see the module
    docstring), from one round's medians (and the memory peaks, when measured)."""
    median = {variant: result['median_s'] for variant, result in results.items()}
    floor = median['student'] + median['teacher']
    own_floor = median['student'] + median['teacher_logits']
    peaks = {variant: result.get('peak_mib') for variant, result in results.items()}
    memory_floor = (peaks['student'] + peaks['teacher']
                    if peaks['student'] is not None else None)
    figures: Dict[str, Dict[str, float]] = {}
    for variant in (variant for variant in DISTILLED if variant in median):
        figures[variant] = dict(overhead=median[variant] / floor,
                                overhead_own_teacher=median[variant] / own_floor)
        if memory_floor:
            figures[variant]['memory_ratio'] = peaks[variant] / memory_floor
        if variant in BLOCKWISE and 'dist' in median:
            figures[variant]['vs_dist'] = median[variant] / median['dist']
        if variant in ('kd_cached', 'kd_bf16', 'kd_stored') and 'kd' in median:
            figures[variant]['speedup'] = median['kd'] / median[variant]
    if 'kd_stored' in median:
        figures['kd_stored']['vs_student'] = median['kd_stored'] / median['student']
    return figures


def median_and_spread(values: List[float]) -> dict:
    """The median of per-round values and their range."""
    return dict(median=statistics.median(values), min=min(values), max=max(values),
                rounds=values)


def profile_kd_step(variants: Dict[str, Timed], calls: int = 3) -> List[dict]:
    """Operator self-CPU time per step in the KD step against the student step plus the distiller's
    teacher forward, biggest surplus first: where the time above the two parts goes (allocation,
    copies, the losses, hooks)."""
    from torch.profiler import ProfilerActivity, profile
    per_op: Dict[str, Dict[str, float]] = {}
    for variant in ('student', 'teacher_logits', 'kd'):
        call = variants[variant]
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(calls):
                call.run()
        for event in profiler.key_averages():
            per_op.setdefault(event.key, {})[variant] = (
                event.self_cpu_time_total / 1000 / (calls * call.steps))
    rows = [dict(op=op, kd_ms=ms.get('kd', 0.0), parts_ms=ms.get('student', 0.0)
                 + ms.get('teacher_logits', 0.0)) for op, ms in per_op.items()]
    for row in rows:
        row['surplus_ms'] = row['kd_ms'] - row['parts_ms']
    return sorted(rows, key=lambda row: -abs(row['surplus_ms']))


def variants_of(name: str, requested: Optional[List[str]]) -> List[str]:
    """The variants measured for a pair: ``requested`` (by default the pair's own list, else all)
    plus the floors, in :data:`VARIANTS` order, without the classification-only ones for
    detection."""
    pair = PAIRS[name]
    if requested is None:
        requested = pair.get('variants', VARIANTS)
    wanted = set(requested) | set(FLOORS)
    return [variant for variant in VARIANTS if variant in wanted
            and (pair['task'] == 'classification' or variant not in CLASSIFICATION_ONLY)]


def benchmark_pair(name: str, args: argparse.Namespace, device: str) -> dict:
    names = variants_of(name, args.variants)
    variants = build_variants(name, names, args, device)
    warmup_rounds = warm_up(variants, args.warmup, args.max_warmup)
    rounds = [measure(variants, args.iters) for _ in range(args.rounds)]
    if device == 'cpu':
        for variant, peak in cpu_peak_memory(name, names, args).items():
            for result in rounds:
                result[variant]['peak_mib'] = peak
    per_round = [ratios(result) for result in rounds]
    results = {}
    for variant in names:
        results[variant] = dict(
            median_s=statistics.median(result[variant]['median_s'] for result in rounds),
            round_medians_s=[result[variant]['median_s'] for result in rounds],
            peak_mib=max((result[variant]['peak_mib'] or 0.0) for result in rounds))
        for figure in per_round[0].get(variant, {}):
            results[variant][figure] = median_and_spread(
                [figures[variant][figure] for figures in per_round])
    summary = dict(warmup_rounds=warmup_rounds, variants=results)
    if args.profile:
        summary['kd_profile'] = profile_kd_step(variants)
    return summary


def print_pair(summary: dict) -> None:
    print(f"  (warm-up: {summary['warmup_rounds']} rounds)")
    for variant, result in summary['variants'].items():
        line = f'  {variant:22s} median {1000 * result["median_s"]:8.1f} ms'
        for figure, label in (('overhead', 'overhead'), ('vs_dist', 'vs DIST'),
                              ('vs_student', 'vs student'),
                              ('speedup', 'speed-up vs KD'), ('memory_ratio', 'memory ratio')):
            if figure in result:
                value = result[figure]
                line += f"  {label} {value['median']:.3f} [{value['min']:.3f}, {value['max']:.3f}]"
        line += f"  peak {result['peak_mib']:.0f} MiB"
        print(line)
    for row in summary.get('kd_profile', [])[:12]:
        print(f"    {row['op'][:40]:40s} KD {row['kd_ms']:8.1f} ms  student+teacher "
              f"{row['parts_ms']:8.1f} ms  surplus {row['surplus_ms']:+8.1f} ms")


def thread_settings() -> dict:
    """What decides this process's CPU parallelism."""
    return dict(torch_threads=torch.get_num_threads(),
                interop_threads=torch.get_num_interop_threads(),
                cpu_count=os.cpu_count(),
                environment={key: os.environ.get(key) for key in (
                    'OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OMP_PROC_BIND', 'KMP_AFFINITY')})


def main() -> None:
    args = parse_args()
    if args.probe_memory:  # child process of cpu_peak_memory
        peak = probe_cpu_memory(args.pairs[0], args.probe_memory, args)
        print(json.dumps(dict(peak_mib=peak)))
        return
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.amp and device != 'cuda':
        raise SystemExit(f'--amp {args.amp}: mixed precision is measured on a CUDA device; '
                         "mmengine's AmpOptimWrapper trains on GPUs only")
    threads = thread_settings()
    print(f'[benchmark] threads: {threads}', flush=True)
    report = dict(device=torch.cuda.get_device_name() if device == 'cuda' else 'cpu',
                  amp=args.amp, threads=threads, iters=args.iters, rounds=args.rounds, pairs={})
    for name in args.pairs:
        print(f'[benchmark] {name} ...', flush=True)
        report['pairs'][name] = results = benchmark_pair(name, args, device)
        print_pair(results)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as file:
        json.dump(report, file, indent=2)
    print(f'[benchmark] written to {args.out}')


if __name__ == '__main__':
    main()
