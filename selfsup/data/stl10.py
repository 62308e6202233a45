"""STL-10 from a directory the user already has.

Pretraining uses 'train+unlabeled' (105,000 images; the 100,000 unlabelled ones
carry label -1, which the online linear probe ignores); the kNN bank is the 5,000
labelled training images and validation is the 8,000-image test split.
"""

from typing import Literal

import torchvision

from selfsup.data.augment import Augmentation
from selfsup.data.base import PretrainDataModule, require_directory


class STL10DataModule(PretrainDataModule):
    mean = (0.4408, 0.4279, 0.3867)
    std = (0.2682, 0.2610, 0.2686)
    num_classes = 10

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 256,
        num_workers: int = 4,
        image_size: int = 96,
        augmentation: Augmentation = Augmentation(),
        num_views: int = 2,
        knn_bank_size: int | None = None,
        seed: int = 0,
        augment_on: Literal["workers", "device"] = "workers",
    ) -> None:
        super().__init__(batch_size, num_workers, image_size, augmentation, num_views, knn_bank_size, seed, augment_on)
        self.data_dir = require_directory(
            data_dir,
            "STL-10 data",
            "Pass --data.data_dir pointing at the folder that holds 'stl10_binary' "
            "(torchvision.datasets.STL10(root, download=True) on a machine with internet access creates it).",
        )
        require_directory(
            self.data_dir / "stl10_binary",
            "STL-10 data",
            f"The folder {self.data_dir} exists but lacks 'stl10_binary': extract the binary version of STL-10 there.",
        )

    def raw_splits(self):
        root = str(self.data_dir)
        stl = torchvision.datasets.STL10
        return stl(root, split="train+unlabeled"), stl(root, split="train"), stl(root, split="test")
