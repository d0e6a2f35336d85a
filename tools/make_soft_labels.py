"""Make a soft-label store: the teacher of a distillation config, run once over K views of every
training sample (FKD, Shen & Xing, ECCV 2022); training from the store then never runs it.

Example (one process, then two; a stopped run goes on where it stopped with the same command):
    python tools/make_soft_labels.py configs/soft_labels/kd_resnet34_resnet18_stored_in1k.py
    torchrun --nproc_per_node 2 tools/make_soft_labels.py CONFIG --launcher pytorch

The views are those of the config's own training pipeline: every transform between loading and
packing (``RandomResizedCrop``, ``RandomFlip``, ...) runs with its generators seeded per
(sample, view), and training replays one of the K views per sample and epoch
(``ReplayStoredView``). The store keeps, per view, the teacher's k most probable classes of
``softmax(z / tau)`` in float16; see ``mmkd_plugins/soft_labels/store.py`` for the files and
docs/user_guides/teacher_cache_and_soft_label_store.md for choosing K and k.
"""

import argparse
import copy
import os
import time

import torch
import torch.distributed as dist
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, init_default_scope
from mmengine.utils import ProgressBar

import mmkd_plugins  # noqa: F401  (registers the types)
from mmkd_plugins.checkpoint import atomic_write_bytes
from mmkd_plugins.datasets.transforms import (apply_view, build_transforms,
                                              first_unreplayable_transform)
from mmkd_plugins.engine.cpu_distributed import slurm_process_environment
from mmkd_plugins.registry import MODELS
from mmkd_plugins.soft_labels import (SoftLabelStore, bytes_per_sample, sample_identity,
                                      split_pipeline, teacher_identity, top_k_soft_labels,
                                      training_dataset_with_pipeline)
from mmkd_plugins.soft_labels.pipeline_rewrite import as_plain
from mmkd_plugins.soft_labels.store import read_header, store_header


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Make a soft-label store for a distillation '
                                     'config (its teacher, training set and pipeline)')
    parser.add_argument('config', help='a Distiller config (its model.soft_labels is ignored)')
    parser.add_argument('--out', help='the store folder (default: model.soft_labels.store)')
    parser.add_argument('--views', type=int, default=100,
                        help='K, stored views per sample (default 100)')
    parser.add_argument('--top-k', type=int, default=10,
                        help='k, classes kept per view (default 10; at most C)')
    parser.add_argument('--tau', type=float,
                        help="the temperature of the stored probabilities (default: the "
                        "losses' fixed tau; required with a learned one)")
    parser.add_argument('--seed', type=int, default=0, help='seed of the views (default 0)')
    parser.add_argument('--batch-size', type=int, default=256,
                        help='views per teacher forward (default 256)')
    parser.add_argument('--approximate', nargs='+', default=[], metavar='TRANSFORM',
                        help='replayed transforms to leave out of the views (they run with '
                        'fresh randomness in training): for transforms whose draws cannot be '
                        'replayed')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    return parser.parse_args()


def store_temperature(model, tau) -> float:
    """``--tau``, or the one fixed temperature of the distiller's losses.

    Raises:
        ValueError: the losses learn their temperature or soften at several, without --tau.
    """
    if tau is not None:
        return tau
    fixed = {float(loss.tau) for loss in model.distill_losses.values()
             if getattr(loss, 'temperature', None) is None and getattr(loss, 'tau', None)}
    learned = [name for name, loss in model.distill_losses.items()
               if getattr(loss, 'temperature', None) is not None]
    if learned or len(fixed) != 1:
        raise ValueError('--tau: the losses soften at '
                         + (f'a learned temperature ({learned[0]})' if learned else
                            f'{sorted(fixed) or "no temperature"}')
                         + '; give the stored probabilities\' temperature with --tau')
    return fixed.pop()


def finished_flag(folder: str, run_token: str, rank: int) -> str:
    """The file by which process ``rank`` of the run ``run_token`` says its share is on disk."""
    return os.path.join(folder, f'.finished.{run_token}.rank{rank}')


def write_finished_flag(folder: str, run_token: str, rank: int) -> None:
    """Say (atomically) that this process's share is written, flushed and closed."""
    atomic_write_bytes(finished_flag(folder, run_token, rank), b'')


def wait_for_finished_ranks(folder: str, run_token: str, world_size: int,
                            poll_seconds: float = 5.0, report_seconds: float = 600.0) -> None:
    """Wait, with no time limit, until every process of the run has written its finish flag (a
    collective barrier's timeout would abort hours of uneven work); say every ``report_seconds``
    which processes are still making their share."""
    last_report = time.monotonic()
    while True:
        waiting = [rank for rank in range(world_size)
                   if not os.path.exists(finished_flag(folder, run_token, rank))]
        if not waiting:
            return
        if time.monotonic() - last_report >= report_seconds:
            print(f'waiting for processes {waiting} to finish their shares', flush=True)
            last_report = time.monotonic()
        time.sleep(poll_seconds)


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    soft_labels = cfg.model.pop('soft_labels', None)
    out = args.out or (soft_labels or {}).get('store')
    if out is None:
        raise SystemExit('--out: no store folder given, and the config has no '
                         'model.soft_labels.store')
    rank, world_size = 0, 1
    if args.launcher != 'none':
        if args.launcher == 'slurm':
            slurm_process_environment()
        dist.init_process_group(backend='nccl' if args.device == 'cuda' else 'gloo')
        rank, world_size = dist.get_rank(), dist.get_world_size()
        if args.device == 'cuda':
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))

    model = MODELS.build(cfg.model).to(args.device).eval()
    tau = store_temperature(model, args.tau)
    num_classes = model.student.head.num_classes
    if not 1 <= args.top_k <= num_classes:
        raise SystemExit(f'--top-k: must be in [1, {num_classes}] (the classes), got {args.top_k}')
    dataset_cfg, field = training_dataset_with_pipeline(cfg)
    loading, replayed, packing = split_pipeline(dataset_cfg.pipeline, field)
    unknown = set(args.approximate) - {str(t['type']).split('.')[-1] for t in replayed}
    if unknown:
        raise SystemExit(f'--approximate: {sorted(unknown)} not among the replayed transforms '
                         f'{[t["type"] for t in replayed]}')
    dataset = DATASETS.build(dict(dataset_cfg, pipeline=[]))
    loading, replayed_transforms, packing_transforms = (
        build_transforms(loading), build_transforms(replayed), build_transforms(packing))

    header = store_header(teacher_identity(cfg.model.teacher), tau, len(dataset), args.views,
                          args.top_k, num_classes, as_plain(replayed), sorted(args.approximate),
                          args.seed, dataset=as_plain(dict(dataset_cfg, pipeline=None)))
    if rank == 0:
        store = SoftLabelStore.create_or_continue(out, header)
    run_token = [str(time.time_ns())]  # names this run's finish flags
    if world_size > 1:
        dist.barrier()
        dist.broadcast_object_list(run_token, src=0)
    if rank != 0:
        store = SoftLabelStore.attach(out, header)
    pending = store.pending_samples(rank, world_size)

    def loaded(index: int) -> dict:
        results = dataset.get_data_info(index)
        for transform in loading:
            results = transform(results)
        return results

    if pending:
        unreplayable = first_unreplayable_transform(replayed_transforms, loaded(pending[0]),
                                                    args.seed, pending[0], args.approximate)
        if unreplayable:
            raise SystemExit(f'{field}: {unreplayable} draws random parameters that cannot be '
                             'replayed (not from the global Python, numpy or torch generators); '
                             f'leave it out of the stored views with --approximate '
                             f'{unreplayable} (it then runs with fresh randomness in training), '
                             'or remove it')

    samples_per_group = max(1, args.batch_size // args.views)
    progress = ProgressBar(len(pending)) if rank == 0 else None
    start = time.perf_counter()
    for first in range(0, len(pending), samples_per_group):
        group = pending[first:first + samples_per_group]
        packed, identities = [], []
        for index in group:
            results = loaded(index)
            identities.append(sample_identity(results))
            for view in range(args.views):
                view_results = apply_view(replayed_transforms, copy.deepcopy(results),
                                          args.seed, index, view, args.approximate,
                                          skip_approximated=True)
                if view_results is None:
                    raise SystemExit(f'{field}: a replayed transform dropped sample {index}')
                for transform in packing_transforms:
                    view_results = transform(view_results)
                packed.append(view_results)
        logits = []
        with torch.no_grad():
            for chunk in range(0, len(packed), args.batch_size):
                batch = model.data_preprocessor(
                    pseudo_collate(packed[chunk:chunk + args.batch_size]), training=False)
                logits.append(model.run_teacher(batch['inputs'], batch['data_samples'])['logits'])
        probabilities, classes = top_k_soft_labels(torch.cat(logits), tau, args.top_k)
        probabilities = probabilities.view(len(group), args.views, -1).cpu().numpy()
        classes = classes.view(len(group), args.views, -1).cpu().numpy()
        for position, index in enumerate(group):
            store.write_sample(index, identities[position], probabilities[position],
                               classes[position])
            if progress is not None:
                progress.update()
        store.flush()
    elapsed = time.perf_counter() - start
    del store  # closes this process's memory maps before the rows are read back
    write_finished_flag(out, run_token[0], rank)
    if rank == 0:
        wait_for_finished_ranks(out, run_token[0], world_size)
        store = SoftLabelStore(out, read_header(out, '--out'), writable=True)  # a fresh map
        lost = store.mark_complete()
        for other in range(world_size):
            os.remove(finished_flag(out, run_token[0], other))
        size = bytes_per_sample(args.views, args.top_k, num_classes)
        kept = store.header['kept_mass'] if store.header.get('complete') else None
        print(f'\nsoft-label store {out}: {store.num_samples} samples x {args.views} views, '
              f'top-{args.top_k} of {num_classes} classes at tau={tau}; '
              f'{size} bytes per sample ({size * store.num_samples / 2**20:.1f} MiB); '
              + (f'complete, the top-{args.top_k} hold {kept["mean"]:.3f} of the teacher\'s '
                 f'probability on average (min {kept["min"]:.3f}); ' if kept else 'INCOMPLETE; ')
              + f'{len(pending)} samples made here in {elapsed:.1f} s '
              f'({elapsed / max(len(pending), 1) * 1000:.1f} ms per sample)')
        if len(lost):
            print(f'{len(lost)} samples marked written read back unwritten (the file system '
                  f'lost their rows, first: {lost[:5].tolist()}); run the same command again to '
                  'make them')
    if world_size > 1:
        dist.destroy_process_group()  # no barrier: each rank left after its own flag


if __name__ == '__main__':
    main()
