"""Any ImageNet-style folder: ``<data_dir>/train/<class>/*`` and ``<data_dir>/val/<class>/*``.

Images are decoded by PIL and converted to RGB (grayscale and RGBA files work).
A file that cannot be decoded, whatever the failure (truncated, not an image, an
unknown format, a decompression bomb beyond PIL's pixel limit), stops the run with
its path (``on_corrupt_image: stop``, the default) or is skipped, counted and replaced
by the next readable image of the split (``skip``); the count is printed at the end.
Pretraining uses ``train``; the kNN bank is a fixed random subset of ``train``
(``knn_bank_size``) and validation is ``val``. Evaluation resizes to
``image_size / 0.875`` and centre-crops, the ImageNet convention.
"""

import multiprocessing
import sys
import warnings
from typing import Literal

from PIL import Image
from torchvision.datasets import ImageFolder

from selfsup.data.base import PretrainDataModule, require_directory
from selfsup.errors import ConfigurationError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CorruptImageError(ConfigurationError):
    """An image file of the dataset cannot be decoded."""


class CheckedImageFolder(ImageFolder):
    """``ImageFolder`` whose undecodable files stop the run by name, or are skipped and counted."""

    def __init__(self, root: str, on_corrupt_image: Literal["stop", "skip"] = "stop") -> None:
        super().__init__(root)
        self.on_corrupt_image = on_corrupt_image
        self.corrupt = multiprocessing.get_context().Array("b", len(self.samples))

    def __getitem__(self, index: int):
        for attempt in range(len(self)):
            candidate = (index + attempt) % len(self)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    return super().__getitem__(candidate)
            except Exception as error:  # PIL and its plugins fail in many ways; each is a bad file
                if isinstance(error, Image.DecompressionBombWarning):
                    error = f"{error} (a decompression bomb, or an image too large to decode safely)"
                path = self.samples[candidate][0]
                if self.on_corrupt_image == "stop":
                    raise CorruptImageError(
                        f"cannot decode {path} ({error}); remove or replace it, or set "
                        "data.init_args.on_corrupt_image: skip to skip and count such files."
                    ) from None
                self.corrupt[candidate] = 1
                warnings.warn(f"skipped corrupt image {path}: {error}", stacklevel=2)
        raise CorruptImageError(f"no image of {self.root} can be decoded.")

    def corrupt_files(self) -> list[str]:
        """The files skipped so far, by any worker process."""
        return [self.samples[index][0] for index, flag in enumerate(self.corrupt[:]) if flag]


class ImageFolderDataModule(PretrainDataModule):
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    crop_fraction = 0.875

    def __init__(
        self,
        data_dir: str,
        num_workers: int = 8,
        image_size: int = 224,
        augment_on: Literal["workers", "device"] = "workers",
        on_corrupt_image: Literal["stop", "skip"] = "stop",
        **kwargs,
    ) -> None:
        """ImageNet's conventions: 224 px, decoding in 8 workers.

        Args:
            data_dir: the folder with ``train/<class>/*`` and ``val/<class>/*``.
            num_workers: DataLoader worker processes that decode the images.
            image_size: the side of the square views.
            augment_on: ``workers`` only: the images of a folder differ in size.
            on_corrupt_image: ``stop`` naming the file, or ``skip`` it and count it.
        """
        super().__init__(num_workers=num_workers, image_size=image_size, augment_on=augment_on, **kwargs)
        self.on_corrupt_image = on_corrupt_image
        if augment_on == "device":
            raise ConfigurationError(
                "data.init_args.augment_on: device needs images of one size; an image folder holds "
                "images of many sizes. Use augment_on: workers (crops are drawn per image there)."
            )
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
        train = CheckedImageFolder(str(self.data_dir / "train"), self.on_corrupt_image)
        return train, train, CheckedImageFolder(str(self.data_dir / "val"), self.on_corrupt_image)

    def teardown(self, stage: str) -> None:
        if self._splits is None:
            return
        _, train, val = self._splits
        skipped = train.corrupt_files() + val.corrupt_files()
        if skipped:
            listed = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
            print(f"skipped {len(skipped)} corrupt image file(s): {listed}", file=sys.stderr)
