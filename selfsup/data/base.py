"""The data shell shared by every pretraining dataset.

A subclass says where its three raw splits come from; this class turns them into

* the training loader: ``(views, label)`` batches of random views (label -1 when
  the split is unlabelled), shuffled, last incomplete batch dropped. The views are
  drawn per image in the loader's workers (``augment_on="workers"``) or, with
  ``augment_on="device"``, for the whole batch at once on the training device
  (:mod:`selfsup.data.batch_augment`): the workers then only deliver uint8 images;
* two validation loaders for the online monitors, by name, both with the evaluation
  transform and yielding ``(image, label, index)``: ``knn_bank`` (labelled training
  images, at most ``knn_bank_size`` of them, a fixed random subset) and
  ``knn_queries`` (the validation split).
"""

import abc
import math
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from selfsup.data.augment import Augmentation, ViewGroup, eval_transform, view_transform
from selfsup.data.batch_augment import BatchViewAugmentation
from selfsup.data.datasets import IndexedDataset, MultiViewDataset, TransformedDataset
from selfsup.errors import ConfigurationError, require


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
        view_groups: list[ViewGroup] | None = None,
        knn_bank_size: int | None = 10_000,
        seed: int = 0,
        augment_on: Literal["workers", "device"] = "workers",
    ) -> None:
        """The settings every pretraining dataset shares; a subclass changes only its own defaults.

        Args:
            batch_size: images per batch on each device (the global batch is this x devices x nodes).
            num_workers: DataLoader worker processes per device.
            image_size: the side of the square views and evaluation images.
            augmentation: the view pipeline's settings (SimCLR's, appendix A).
            num_views: random views per image (2 for contrastive methods, 1 for the pretext tasks).
            view_groups: groups of views with their own count, size and augmentation (BYOL's asymmetric
                pair, DINO's multi-crop); the views come in group order and number their total counts
                (``num_views`` then left at its default or equal to it). Unset: one group of ``num_views``.
            knn_bank_size: at most this many labelled training images in the online kNN bank (``None``: all).
            seed: draws the fixed kNN bank subset and seeds the validation loaders.
            augment_on: ``workers`` (per image, torchvision) or ``device`` (per batch on the GPU, kornia).
        """
        super().__init__()
        key = "data.init_args."
        require(batch_size >= 1, key + "batch_size", batch_size, "at least 1 (images per device)")
        require(num_workers >= 0, key + "num_workers", num_workers, ">= 0")
        require(image_size >= 1, key + "image_size", image_size, ">= 1 (pixels)")
        require(num_views >= 1, key + "num_views", num_views, ">= 1 (2 for contrastive methods)")
        if view_groups is not None:
            require(len(view_groups) >= 1, key + "view_groups", view_groups, "null or a non-empty list")
            total = sum(group.count for group in view_groups)
            require(
                num_views in (2, total),
                key + "num_views",
                num_views,
                f"left out with view_groups, or equal to their {total} views",
            )
            num_views = total
        require(knn_bank_size is None or knn_bank_size >= 1, key + "knn_bank_size", knn_bank_size, "null or >= 1")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.augmentation = augmentation
        self.num_views = num_views
        #: (count, image size, augmentation) of each group of views, every default filled in.
        self.view_groups = [
            (group.count, group.image_size or image_size, group.augmentation or augmentation)
            for group in (view_groups or [ViewGroup(num_views)])
        ]
        self.knn_bank_size = knn_bank_size
        self.seed = seed
        self.augment_on = augment_on
        self.batch_augmentation = None
        if augment_on == "device":
            self.batch_augmentation = [
                (count, BatchViewAugmentation(pipeline, size, self.mean, self.std))
                for count, size, pipeline in self.view_groups
            ]
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
            groups = [
                (view_transform(views, size, self.mean, self.std), count) for count, size, views in self.view_groups
            ]
            dataset = MultiViewDataset(pretrain, groups)
        ranks = self.trainer.world_size if self.trainer is not None else 1
        if math.ceil(len(pretrain) / ranks) < self.batch_size:
            raise ConfigurationError(
                f"the pretraining split holds {len(pretrain)} images, fewer than one batch of data.batch_size="
                f"{self.batch_size} on each of {ranks} device(s); incomplete batches are dropped, so nothing would "
                f"train. Set data.init_args.batch_size to at most {max(1, len(pretrain) // ranks)}."
            )
        # Workers restart every epoch, seeded from the global generator: a resumed run
        # then draws the same augmentations as an uninterrupted one.
        return self._loader(dataset, shuffle=True, drop_last=True, persistent_workers=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """With ``augment_on="device"``: turn a training batch of images into views, on the device."""
        if self.batch_augmentation is None or not self.trainer.training:
            return batch
        images, labels = batch
        views = []
        for count, augment in self.batch_augmentation:
            augment = augment.to(images.device)
            views += [augment(images) for _ in range(count)]
        return views, labels

    def val_dataloader(self) -> dict[str, DataLoader]:
        _, labelled, val = self._splits
        transform = eval_transform(self.image_size, self.mean, self.std, self.crop_fraction)
        bank_indices = None
        if self.knn_bank_size is not None and self.knn_bank_size < len(labelled):
            generator = torch.Generator().manual_seed(self.seed)
            bank_indices = torch.randperm(len(labelled), generator=generator)[: self.knn_bank_size].sort().values
        return {
            "knn_bank": self._loader(
                IndexedDataset(labelled, transform, bank_indices.tolist() if bank_indices is not None else None),
                generator=torch.Generator().manual_seed(self.seed),
            ),
            "knn_queries": self._loader(
                IndexedDataset(val, transform), generator=torch.Generator().manual_seed(self.seed)
            ),
        }

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
