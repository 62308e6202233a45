"""Frozen features of a dataset, extracted once."""

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from selfsup.data.datasets import IndexedDataset


@torch.no_grad()
def extract_features(
    backbone: nn.Module, dataset: Dataset, transform, batch_size: int = 256, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, labels)`` of every ``(image, label)`` in ``dataset``, backbone in eval mode.

    The backbone's training mode is restored afterwards.
    """
    was_training = backbone.training
    backbone.eval().to(device)
    features, labels = [], []
    for images, targets, _ in DataLoader(IndexedDataset(dataset, transform), batch_size=batch_size):
        features.append(backbone(images.to(device)).cpu())
        labels.append(targets)
    backbone.train(was_training)
    return torch.cat(features), torch.cat(labels)
