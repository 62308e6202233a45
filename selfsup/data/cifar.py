"""CIFAR-10 and CIFAR-100 from a directory the user already has.

Pretraining uses the 50,000 training images; the online monitors use the training
images as the kNN bank and the official 10,000-image test set as validation,
as solo-learn and lightly do for the figures they publish.
"""

from typing import Literal

import torchvision

from selfsup.data.augment import Augmentation
from selfsup.data.base import PretrainDataModule, require_directory


class CIFAR10DataModule(PretrainDataModule):
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    num_classes = 10
    dataset_class = torchvision.datasets.CIFAR10
    folder = "cifar-10-batches-py"

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 256,
        num_workers: int = 4,
        image_size: int = 32,
        augmentation: Augmentation = Augmentation(jitter_strength=0.5, blur_prob=0.0),
        num_views: int = 2,
        knn_bank_size: int | None = None,
        seed: int = 0,
        augment_on: Literal["workers", "device"] = "workers",
    ) -> None:
        super().__init__(batch_size, num_workers, image_size, augmentation, num_views, knn_bank_size, seed, augment_on)
        name = self.dataset_class.__name__
        self.data_dir = require_directory(
            data_dir,
            f"{name} data",
            f"Pass --data.data_dir pointing at the folder that holds '{self.folder}' "
            f"(torchvision.datasets.{name}(root, download=True) on a machine with internet access creates it).",
        )
        require_directory(
            self.data_dir / self.folder,
            f"{name} data",
            f"The folder {self.data_dir} exists but lacks '{self.folder}': extract the python version of {name} there.",
        )

    def raw_splits(self):
        train = self.dataset_class(str(self.data_dir), train=True, download=False)
        test = self.dataset_class(str(self.data_dir), train=False, download=False)
        return train, train, test


class CIFAR100DataModule(CIFAR10DataModule):
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    num_classes = 100
    dataset_class = torchvision.datasets.CIFAR100
    folder = "cifar-100-python"
