"""Batch statistics across the processes of a distributed run."""

import torch
import torch.distributed as dist


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Concatenate the ``rows`` of every process in rank order; gradient flows to the local rows.

    Processes may hold different numbers of rows (a last, smaller batch).

    Args:
        rows: Shape (B_r, C) on process r.

    Returns:
        Shape (Σ_r B_r, C); identical on every process except for which rows carry gradient.
    """
    world_size = _world_size()
    if world_size == 1:
        return rows
    sizes = [torch.zeros(1, dtype=torch.long, device=rows.device) for _ in range(world_size)]
    dist.all_gather(sizes, torch.tensor([rows.shape[0]], device=rows.device))
    largest = int(max(size.item() for size in sizes))
    padded = rows.new_zeros((largest, *rows.shape[1:]))
    padded[:rows.shape[0]] = rows.detach()
    gathered = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(gathered, padded)
    parts = [part[:int(size.item())] for part, size in zip(gathered, sizes)]
    parts[dist.get_rank()] = rows
    return torch.cat(parts)


def scale_gradient_by_world_size(loss: torch.Tensor) -> torch.Tensor:
    """Same value, gradient multiplied by the number of processes.

    A loss computed on rows gathered from every process reaches each process's parameters only
    through its local rows; DDP then averages the gradients of the processes. Multiplying by the
    world size makes that average equal the gradient of a single process holding the whole batch.
    """
    world_size = _world_size()
    if world_size == 1:
        return loss
    return world_size * loss - (world_size - 1) * loss.detach()
