"""Helpers for code that runs on every rank of a process group.

They work the same with or without ``torch.distributed`` initialised, so a loss
written with them needs no special case for a single device.
"""

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, in rank order.

    Gradients flow back to the rank that produced each slice (the backward pass sums
    the gradients every rank computed for it), so a loss over the gathered tensor
    trains every rank's encoder. Every rank must pass a tensor of the same shape: the
    backward pass finds each rank's slice at ``rank x rows``, and so do the losses that
    locate a rank's own rows in the gathered tensor; ranks of unequal rows are refused.
    """
    if not is_distributed():
        return tensor
    return _GatherWithGrad.apply(tensor)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather forward; backward sums every rank's gradient and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        ctx.length = tensor.shape[0]
        gathered = gather(tensor)
        if len(gathered) != ctx.length * dist.get_world_size():
            raise ValueError(
                f"every rank must hold the same number of rows to gather with gradient ({ctx.length} here, "
                f"{len(gathered)} in all): the training loader drops the last incomplete batch"
            )
        return gathered

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = dist.get_rank() * ctx.length
        return grad[start : start + ctx.length]


@torch.no_grad()
def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, in rank order, without gradient.

    Ranks may hold different numbers of rows (an unpadded sampler's last shard): each part
    is padded to the longest for ``all_gather``, which needs equal shapes, and trimmed after.
    """
    if not is_distributed():
        return tensor
    world = dist.get_world_size()
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    longest = int(max(size.item() for size in sizes))
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[: int(size.item())] for part, size in zip(parts, sizes)], dim=0)


@torch.no_grad()
def shuffle_across_ranks(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo's Shuffle-BN, step 1: each rank receives a random slice of the global batch.

    Returns the local slice and the index that :func:`unshuffle_across_ranks` needs to
    give every rank its own samples back. Rank 0 draws the permutation for all.
    """
    everything = gather(tensor)
    permutation = torch.randperm(everything.shape[0], device=tensor.device)
    dist.broadcast(permutation, src=0)
    local = permutation.view(world_size(), -1)[rank()]
    return everything[local], torch.argsort(permutation)


@torch.no_grad()
def unshuffle_across_ranks(tensor: torch.Tensor, unshuffle: torch.Tensor) -> torch.Tensor:
    """MoCo's Shuffle-BN, step 2: return each rank the outputs of its own samples, in order."""
    everything = gather(tensor)
    return everything[unshuffle.view(world_size(), -1)[rank()]]


def all_gather_objects(value) -> list:
    """``[value of rank 0, value of rank 1, ...]``: any picklable value, on every rank."""
    if not is_distributed():
        return [value]
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values
