"""Frozen features of a dataset, extracted once, on one device or many.

Each stage's map is average-pooled to a vector; the features of every rank are
gathered and deduplicated by index, so every rank ends with the whole dataset in
index order, as one process would have it.
"""

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import Dataset

from downstream.data import extraction_loader
from downstream.hardware import Hardware
from selfsup.evaluation import gather_unique


class FeatureExtractor(pl.LightningModule):
    def __init__(self, backbone: nn.Module, dataset: Dataset, hardware: Hardware, all_stages: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.dataset, self.hardware = dataset, hardware
        self.all_stages = all_stages
        self._outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.features: list[torch.Tensor] = []
        self.labels: torch.Tensor | None = None

    def test_dataloader(self):
        return extraction_loader(self.dataset, self.trainer, self.hardware.batch_size, self.hardware.num_workers)

    def test_step(self, batch, batch_idx) -> None:
        images, labels, indices = batch
        maps = self.backbone.forward_stages(images)
        pooled = [stage.mean(dim=(2, 3)).float() for stage in (maps if self.all_stages else maps[-1:])]
        self._outputs.append((torch.cat(pooled, dim=1), labels, indices))

    def on_test_epoch_end(self) -> None:
        features, labels, indices = map(torch.cat, zip(*self._outputs))
        self._outputs = []
        features, labels = gather_unique(features, labels, indices)
        widths = self.backbone.stage_dims if self.all_stages else self.backbone.stage_dims[-1:]
        self.features = [part.cpu() for part in features.split(list(widths), dim=1)]
        self.labels = labels.cpu()


def extract(
    backbone: nn.Module, dataset: Dataset, hardware: Hardware, all_stages: bool = False
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """``([features of each stage], labels)``; one entry (the last stage) unless ``all_stages``.

    ``dataset`` yields ``(image, label, index)``. The backbone runs in eval mode and
    is left unchanged.
    """
    extractor = FeatureExtractor(backbone, dataset, hardware, all_stages)
    hardware.trainer(inference_mode=False).test(extractor)
    return extractor.features, extractor.labels


class FeatureCache:
    """The features of one network, each split's images extracted again only when they change.

    The test split serves every seed; a training subset serves every seed that draws
    the same one (all of them with every label). ``key`` names the images of a split.
    """

    def __init__(self, network: nn.Module, hardware: Hardware, all_stages: bool = False) -> None:
        self.network, self.hardware, self.all_stages = network, hardware, all_stages
        self._latest: dict[str, tuple] = {}

    def features(self, split: str, dataset: Dataset, key=None) -> tuple[list[torch.Tensor], torch.Tensor]:
        cached = self._latest.get(split)
        if cached is None or cached[0] != key:
            cached = self._latest[split] = (key, extract(self.network, dataset, self.hardware, self.all_stages))
        return cached[1]
