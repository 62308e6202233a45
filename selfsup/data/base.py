"""The data shell shared by every pretraining dataset.

A subclass says where its three raw splits come from; this class turns them into

* the training loader: ``(views, label)`` batches of random views (label -1 when
  the split is unlabelled), shuffled, last incomplete batch dropped. The views are
  drawn per image in the loader's workers (``augment_on="workers"``) or, with
  ``augment_on="device"``, for the whole batch at once on the training device
  (:mod:`selfsup.data.batch_augment`): the workers then only deliver uint8 images;
* two validation loaders for the online monitors, both with the evaluation
  transform and yielding ``(image, label, index)``: first the kNN *bank* (labelled
  training images, at most ``knn_bank_size`` of them, a fixed random subset), then
  the *queries* (the validation split).
"""

import abc
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from selfsup.data.augment import Augmentation, eval_transform, view_transform
from selfsup.data.batch_augment import BatchViewAugmentation
from selfsup.data.datasets import IndexedDataset, MultiViewDataset, TransformedDataset
from selfsup.errors import ConfigurationError


class PretrainDataModule(pl.LightningDataModule, abc.ABC):
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_classes: int
    crop_fraction: float = 1.0

    def __init__(
        self,
        batch_size: int = 256,
        num_workers: int = 4,
        image_size: int = 32,
        augmentation: Augmentation = Augmentation(),
        num_views: int = 2,
        knn_bank_size: int | None = 10_000,
        seed: int = 0,
        augment_on: Literal["workers", "device"] = "workers",
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigurationError(f"data.batch_size must be at least 1, got {batch_size}.")
        if num_workers < 0:
            raise ConfigurationError(f"data.num_workers must be >= 0, got {num_workers}.")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.augmentation = augmentation
        self.num_views = num_views
        self.knn_bank_size = knn_bank_size
        self.seed = seed
        self.augment_on = augment_on
        self.batch_augmentation = (
            BatchViewAugmentation(augmentation, image_size, self.mean, self.std) if augment_on == "device" else None
        )
        self._splits: tuple[Dataset, Dataset, Dataset] | None = None

    @abc.abstractmethod
    def raw_splits(self) -> tuple[Dataset, Dataset, Dataset]:
        """``(pretrain, labelled_train, val)`` datasets of ``(image, label)``, untransformed."""

    def setup(self, stage: str | None = None) -> None:
        if self._splits is None:
            self._splits = self.raw_splits()

    def train_dataloader(self) -> DataLoader:
        pretrain, _, _ = self._splits
        if self.batch_augmentation is not None:
            dataset = TransformedDataset(pretrain, v2.ToImage())
        else:
            views = view_transform(self.augmentation, self.image_size, self.mean, self.std)
            dataset = MultiViewDataset(pretrain, views, self.num_views)
        # Workers restart every epoch, seeded from the global generator: a resumed run
        # then draws the same augmentations as an uninterrupted one.
        return self._loader(dataset, shuffle=True, drop_last=True, persistent_workers=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """With ``augment_on="device"``: turn a training batch of images into views, on the device."""
        if self.batch_augmentation is None or not self.trainer.training:
            return batch
        images, labels = batch
        augment = self.batch_augmentation.to(images.device)
        return [augment(images) for _ in range(self.num_views)], labels

    def val_dataloader(self) -> list[DataLoader]:
        _, labelled, val = self._splits
        transform = eval_transform(self.image_size, self.mean, self.std, self.crop_fraction)
        bank_indices = None
        if self.knn_bank_size is not None and self.knn_bank_size < len(labelled):
            generator = torch.Generator().manual_seed(self.seed)
            bank_indices = torch.randperm(len(labelled), generator=generator)[: self.knn_bank_size].sort().values
        return [
            self._loader(
                IndexedDataset(labelled, transform, bank_indices.tolist() if bank_indices is not None else None),
                generator=torch.Generator().manual_seed(self.seed),
            ),
            self._loader(IndexedDataset(val, transform), generator=torch.Generator().manual_seed(self.seed)),
        ]

    def _loader(
        self,
        dataset: Dataset,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        persistent_workers: bool = True,
    ) -> DataLoader:
        """A loader; ``generator`` keeps it from drawing on the global generator that training resumes."""
        return DataLoader(
            dataset,
            generator=generator,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=persistent_workers and self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )


def require_directory(path: str | Path, what: str, how_to_get: str) -> Path:
    """Return ``path`` if it is a directory, else raise one clear message."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ConfigurationError(f"{what} not found: expected the directory {path}. {how_to_get}")
    return path
