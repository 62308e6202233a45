"""Collecting evaluation features from every rank, each sample exactly once."""

import torch

from selfsup.distributed import gather


def gather_unique(features: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor):
    """Gather ``(features, labels)`` from all ranks and keep one row per dataset index.

    A distributed sampler pads the ranks to equal length by repeating samples;
    deduplicating by index makes a distributed evaluation count every sample once,
    in index order, exactly as a single process does.
    """
    features, labels, indices = gather(features), gather(labels), gather(indices)
    order = torch.argsort(indices, stable=True)
    indices = indices[order]
    first = torch.ones_like(indices, dtype=torch.bool)
    first[1:] = indices[1:] != indices[:-1]
    return features[order][first], labels[order][first]
