"""scikit-learn's handwritten digits: the embedded default dataset.

1,797 real 8x8 grayscale images of the digits 0-9 (the UCI optical-recognition
test set), shipped inside scikit-learn, so nothing is downloaded. Pixels (0-16)
are scaled to 0-255, replicated to three channels and resized once to
``image_size``. Splits are stratified and fixed (seed 0): 60% train, 20% val,
20% test; pretraining sees the train split without labels.
"""

from functools import lru_cache

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from selfsup.data.augment import Augmentation
from selfsup.data.base import PretrainDataModule
from selfsup.data.datasets import TensorImageDataset

SPLIT_SEED = 0
SPLITS = ("train", "val", "test")

DIGITS_AUGMENTATION = Augmentation(
    crop_scale=(0.4, 1.0),
    horizontal_flip_prob=0.0,
    jitter_strength=0.5,
    jitter_hue=False,
    grayscale_prob=0.0,
    blur_prob=0.0,
)


@lru_cache(maxsize=8)
def digits_split(split: str, image_size: int = 16) -> TensorImageDataset:
    """One fixed split of the digits as uint8 ``(N, 3, image_size, image_size)`` images."""
    if split not in SPLITS:
        raise ValueError(f"digits split must be one of {SPLITS}, got {split!r}")
    digits = load_digits()
    indices = torch.arange(len(digits.target)).numpy()
    train, rest = train_test_split(indices, train_size=0.6, stratify=digits.target, random_state=SPLIT_SEED)
    val, test = train_test_split(rest, train_size=0.5, stratify=digits.target[rest], random_state=SPLIT_SEED)
    chosen = {"train": train, "val": val, "test": test}[split]

    pixels = torch.as_tensor(digits.images[chosen], dtype=torch.float32).unsqueeze(1) * (255.0 / 16.0)
    resized = F.interpolate(pixels, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = resized.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return TensorImageDataset(images, torch.as_tensor(digits.target[chosen]))


class DigitsDataModule(PretrainDataModule):
    """Digits for pretraining on a CPU; the default augmentation suits small grayscale glyphs."""

    mean = (0.19, 0.19, 0.19)
    std = (0.32, 0.32, 0.32)
    num_classes = 10

    def __init__(
        self,
        num_workers: int = 0,
        image_size: int = 16,
        augmentation: Augmentation = DIGITS_AUGMENTATION,
        knn_bank_size: int | None = None,
        **kwargs,
    ) -> None:
        """In-process data (no workers needed), 16 px, no flips or colour changes a glyph cannot have.

        Args:
            num_workers: DataLoader worker processes (the images are already in memory).
            image_size: the side the 8x8 digits are resized to once.
            augmentation: the view pipeline's settings.
            knn_bank_size: at most this many training images in the kNN bank (``None``: all).
        """
        super().__init__(
            num_workers=num_workers,
            image_size=image_size,
            augmentation=augmentation,
            knn_bank_size=knn_bank_size,
            **kwargs,
        )

    def raw_splits(self):
        train = digits_split("train", self.image_size)
        return train, train, digits_split("val", self.image_size)
