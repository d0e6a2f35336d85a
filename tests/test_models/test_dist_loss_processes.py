"""DIST with ``sync_batch`` in 2 real processes (gloo) equals one process with both batches."""

import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmkd_plugins.engine import shutdown_distributed
from mmkd_plugins.models.losses import DISTLoss

WORLD_SIZE = 2


def _rank_worker(rank, init_file, student, teacher, sizes, loss_kwargs, out_dir):
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=WORLD_SIZE)
    start = sum(sizes[:rank])
    shard = student[start:start + sizes[rank]].clone().requires_grad_(True)
    loss = DISTLoss(**loss_kwargs)(shard, teacher[start:start + sizes[rank]])
    loss.backward()
    torch.save({'loss': loss.detach(), 'grad': shard.grad}, osp.join(out_dir, f'rank{rank}.pt'))
    shutdown_distributed()  # barrier first: a rank leaving early breaks the other's mesh


def run_in_two_processes(tmp_path, student, teacher, sizes, **loss_kwargs):
    mp.spawn(_rank_worker, nprocs=WORLD_SIZE,
             args=(str(tmp_path / 'init'), student, teacher, sizes, loss_kwargs, str(tmp_path)))
    return [torch.load(tmp_path / f'rank{rank}.pt') for rank in range(WORLD_SIZE)]


def single_process(student, teacher, **loss_kwargs):
    student = student.clone().requires_grad_(True)
    loss = DISTLoss(**loss_kwargs)(student, teacher)
    loss.backward()
    return loss.detach(), student.grad


def test_two_processes_match_one_process_with_the_whole_batch(tmp_path):
    torch.manual_seed(0)
    student, teacher = torch.randn(8, 5), torch.randn(8, 5)
    options = dict(beta=1.0, gamma=2.0, tau=2.0, sync_batch=True)
    ranks = run_in_two_processes(tmp_path, student, teacher, [4, 4], **options)
    full_loss, full_grad = single_process(student, teacher, **options)
    for rank, result in enumerate(ranks):
        torch.testing.assert_close(result['loss'], full_loss)
        # DDP averages the two ranks' gradients: each must be WORLD_SIZE x its share.
        torch.testing.assert_close(result['grad'],
                                   WORLD_SIZE * full_grad[4 * rank:4 * (rank + 1)])
    local_only = run_in_two_processes(tmp_path, student, teacher, [4, 4],
                                      **dict(options, sync_batch=False))
    assert not torch.allclose(local_only[0]['loss'], full_loss)


def test_uneven_batches_are_gathered_whole(tmp_path):
    torch.manual_seed(1)
    student, teacher = torch.randn(7, 4), torch.randn(7, 4)
    options = dict(beta=1.0, gamma=1.0, tau=1.0, sync_batch=True)
    ranks = run_in_two_processes(tmp_path, student, teacher, [3, 4], **options)
    full_loss, _ = single_process(student, teacher, **options)
    for result in ranks:
        torch.testing.assert_close(result['loss'], full_loss)


def test_sync_batch_is_plain_dist_in_one_process():
    student, teacher = torch.randn(6, 5), torch.randn(6, 5)
    gathered = DISTLoss(sync_batch=True)(student, teacher)
    assert gathered.item() == pytest.approx(DISTLoss()(student, teacher).item(), rel=1e-6)
