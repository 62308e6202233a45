"""CIFAR-10 and CIFAR-100 from a directory the user already has.

Pretraining uses the 50,000 training images; the online monitors use the training
images as the kNN bank and the official 10,000-image test set as validation,
as solo-learn and lightly do for the figures they publish.
"""

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
        augmentation: Augmentation = Augmentation(jitter_strength=0.5, blur_prob=0.0),
        knn_bank_size: int | None = None,
        **kwargs,
    ) -> None:
        """SimCLR's CIFAR augmentation (appendix B.9: jitter strength 0.5, no blur); the whole training set as bank.

        Args:
            data_dir: the folder holding the extracted python version of the dataset.
            augmentation: the view pipeline's settings.
            knn_bank_size: at most this many training images in the kNN bank (``None``: all).
        """
        super().__init__(augmentation=augmentation, knn_bank_size=knn_bank_size, **kwargs)
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
