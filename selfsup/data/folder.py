"""Any ImageNet-style folder: ``<data_dir>/train/<class>/*`` and ``<data_dir>/val/<class>/*``.

Images are decoded by PIL and converted to RGB (grayscale and RGBA files work).
Pretraining uses ``train``; the kNN bank is a fixed random subset of ``train``
(``knn_bank_size``) and validation is ``val``. Evaluation resizes to
``image_size / 0.875`` and centre-crops, the ImageNet convention.
"""

from torchvision.datasets import ImageFolder

from selfsup.data.augment import Augmentation
from selfsup.data.base import PretrainDataModule, require_directory
from selfsup.errors import ConfigurationError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFolderDataModule(PretrainDataModule):
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    crop_fraction = 0.875

    def __init__(
        self,
        data_dir: str,
        batch_size: int = 256,
        num_workers: int = 8,
        image_size: int = 224,
        augmentation: Augmentation = Augmentation(),
        num_views: int = 2,
        knn_bank_size: int | None = 10_000,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, image_size, augmentation, num_views, knn_bank_size, seed)
        how = "Pass --data.data_dir pointing at a folder with train/<class>/<image> and val/<class>/<image>."
        self.data_dir = require_directory(data_dir, "image folder", how)
        class_sets = {}
        for split in ("train", "val"):
            split_dir = require_directory(self.data_dir / split, f"the '{split}' split of the image folder", how)
            class_sets[split] = sorted(entry.name for entry in split_dir.iterdir() if entry.is_dir())
            if not class_sets[split]:
                raise ConfigurationError(f"{split_dir} has no class sub-folders. {how}")
        if class_sets["train"] != class_sets["val"]:
            raise ConfigurationError(
                f"train and val of {self.data_dir} have different class folders "
                f"({len(class_sets['train'])} vs {len(class_sets['val'])}); they must match."
            )
        self.num_classes = len(class_sets["train"])

    def raw_splits(self):
        train = ImageFolder(str(self.data_dir / "train"))
        return train, train, ImageFolder(str(self.data_dir / "val"))
