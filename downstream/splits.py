"""Class-balanced labelled subsets, deterministic from a seed."""

import torch
from torch.utils.data import Dataset

from selfsup.errors import ConfigurationError


def balanced_subset(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``per_class`` examples of every class, drawn without replacement.

    Deterministic for a given ``seed``; a class with fewer examples is an error.
    """
    return _draw(labels, lambda count: per_class, seed)


def label_fraction_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of ``fraction`` of every class (at least one example each): 1% is 0.01.

    Each class keeps round(fraction x its size) examples, so the subset has the class
    balance of the full set; ``fraction=1`` keeps everything.
    """
    if not 0 < fraction <= 1:
        raise ConfigurationError(f"label fraction must lie in (0, 1], got {fraction}; 1% is 0.01.")
    return _draw(labels, lambda count: max(1, round(fraction * count)), seed)


def labels_of(dataset: Dataset) -> torch.Tensor:
    """The label of every example, read without loading the images."""
    for attribute in ("labels", "targets"):
        if hasattr(dataset, attribute):
            return torch.as_tensor(getattr(dataset, attribute))
    return torch.tensor([int(dataset[index][1]) for index in range(len(dataset))])


def _draw(labels: torch.Tensor, size_of_class, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in labels.unique(sorted=True):
        members = (labels == label).nonzero().flatten()
        wanted = size_of_class(len(members))
        if len(members) < wanted:
            raise ConfigurationError(
                f"class {int(label)} has {len(members)} examples, fewer than the {wanted} asked for."
            )
        chosen.append(members[torch.randperm(len(members), generator=generator)[:wanted]])
    return torch.cat(chosen).sort().values
