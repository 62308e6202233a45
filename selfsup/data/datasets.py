"""Dataset wrappers that apply the transforms and shape what a batch holds."""

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset


class TensorImageDataset(Dataset):
    """Images held in memory as a ``(N, C, H, W)`` uint8 tensor, with integer labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a (N, C, H, W) uint8 tensor, got {images.dtype} {tuple(images.shape)}")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], int(self.labels[index])


class TransformedDataset(Dataset):
    """Yields ``(transform(image), label)``."""

    def __init__(self, base: Dataset, transform: Callable) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return self.transform(image), label


class MultiViewDataset(Dataset):
    """Yields ``(views, label)``: independent random views of one image, ``count`` from each transform in turn."""

    def __init__(self, base: Dataset, groups: Sequence[tuple[Callable, int]]) -> None:
        self.base = base
        self.groups = list(groups)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, label = self.base[index]
        return [transform(image) for transform, count in self.groups for _ in range(count)], label


class IndexedDataset(Dataset):
    """Yields ``(image, label, index)``, optionally over a subset of ``base``.

    The index lets distributed evaluation drop the duplicates that a distributed
    sampler adds to make ranks equal.
    """

    def __init__(self, base: Dataset, transform: Callable, indices: Sequence[int] | None = None) -> None:
        self.base = base
        self.transform = transform
        self.indices = list(range(len(base))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int):
        index = self.indices[position]
        image, label = self.base[index]
        return self.transform(image), label, index
