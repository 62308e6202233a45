"""Loaders that give one process and N processes the same batches.

Every dataset here yields ``(input, label, index)``: images through a transform, or
cached feature vectors.

* Training: a seeded :class:`DistributedSampler` (also on one process), so the global
  batch of step k is the same set of examples on any number of ranks and, with the
  loss averaged per rank and DDP averaging gradients, training follows the same path.
* Testing: each example on exactly one rank (no padding), so synced metrics count
  every example once.
* Extraction: padded shards; the gathered features are deduplicated by index.
"""

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset


def feature_dataset(features: torch.Tensor, labels: torch.Tensor) -> TensorDataset:
    """Cached features as a dataset of ``(feature, label, index)``."""
    return TensorDataset(features, labels, torch.arange(len(labels)))


class EvaluationData(pl.LightningDataModule):
    def __init__(self, train: Dataset, test: Dataset, batch_size: int, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.train, self.test = train, test
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed

    def train_dataloader(self) -> DataLoader:
        sampler = DistributedSampler(
            self.train, num_replicas=self._world_size(), rank=self._rank(), shuffle=True, seed=self.seed
        )
        return self._loader(self.train, sampler, batch_size=max(1, self.batch_size // self._world_size()))

    def test_dataloader(self) -> DataLoader:
        sampler = UnrepeatedDistributedSampler(
            self.test, num_replicas=self._world_size(), rank=self._rank(), shuffle=False
        )
        return self._loader(self.test, sampler, self.batch_size)

    def _loader(self, dataset: Dataset, sampler, batch_size: int) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
        )

    def _world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    def _rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0


def extraction_loader(dataset: Dataset, trainer: pl.Trainer, batch_size: int, num_workers: int = 0) -> DataLoader:
    sampler = DistributedSampler(dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
