"""Labelled subsets for few-label evaluation."""

import torch


def balanced_subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of ``per_class`` examples of every class, drawn without replacement.

    Deterministic for a given ``seed``; a class with fewer examples is an error.
    """
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in labels.unique(sorted=True):
        members = (labels == label).nonzero().flatten()
        if len(members) < per_class:
            raise ValueError(f"class {int(label)} has {len(members)} examples, fewer than the {per_class} asked for")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values
