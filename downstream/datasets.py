"""The labelled datasets a backbone is evaluated on, by name.

| name | train | test |
|---|---|---|
| ``digits`` | digits train split (1,078) | digits test split (360) |
| ``digits_transfer`` | digits train, classes 5-9 only, relabelled 0-4 | digits test, classes 5-9 |
| ``cifar10``, ``cifar100`` | the 50,000 training images | the official 10,000 test images |
| ``stl10`` | the 5,000 labelled training images | the 8,000 test images |
| ``imagefolder`` | ``<data_dir>/train/<class>/*`` | ``<data_dir>/val/<class>/*`` |

``digits_transfer`` evaluates on classes a pretraining run saw without labels, as a
subset task of its own. Real datasets are read from ``data_dir``; a missing directory
is one message saying what was expected.
"""

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from selfsup.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    ImageFolderDataModule,
    STL10DataModule,
    digits_split,
)
from selfsup.data.datasets import TensorImageDataset
from selfsup.errors import ConfigurationError

TRANSFER_CLASSES = (5, 6, 7, 8, 9)


@dataclass
class LabelledSplits:
    train: Dataset
    test: Dataset
    num_classes: int
    crop_fraction: float = 1.0


def load_dataset(name: str, image_size: int, data_dir: str | None = None) -> LabelledSplits:
    """Train and test split of dataset ``name`` (see the module docstring)."""
    if name == "digits":
        return LabelledSplits(digits_split("train", image_size), digits_split("test", image_size), 10)
    if name == "digits_transfer":
        return LabelledSplits(
            _class_subset(digits_split("train", image_size), TRANSFER_CLASSES),
            _class_subset(digits_split("test", image_size), TRANSFER_CLASSES),
            len(TRANSFER_CLASSES),
        )
    datamodule = _datamodule(name, data_dir, image_size)
    _, labelled, test = datamodule.raw_splits()
    return LabelledSplits(labelled, test, datamodule.num_classes, datamodule.crop_fraction)


def check_dataset(name: str, data_dir: str | None = None) -> None:
    """Raise :class:`ConfigurationError` unless ``name`` is known and its data directory has the expected layout.

    Cheap (no image is read), so that the evaluation matrix can check every dataset before its first cell.
    The message names the key, ``datasets.<name>``. An embedded dataset takes no directory: one given
    would be ignored, so it is refused.
    """
    if name in EMBEDDED:
        if data_dir is not None:
            raise ConfigurationError(
                f"datasets.{name} takes no data directory (the digits are embedded in the package): "
                f"give {name}: null, got {data_dir!r}."
            )
        return
    if name in DATAMODULES and isinstance(data_dir, str) and not data_dir.strip():
        raise ConfigurationError(f"datasets.{name} must be the path of its data directory, got {data_dir!r}.")
    try:
        _datamodule(name, data_dir, image_size=32)
    except ConfigurationError as error:
        # The datamodules' hints name selfsup fit's flag; here the directory is the dataset's value.
        message = str(error).replace("Pass --data.data_dir pointing at", f"Set datasets.{name} to")
        raise ConfigurationError(message if message.startswith("datasets") else f"datasets.{name}: {message}") from None


EMBEDDED = ("digits", "digits_transfer")
DATAMODULES = {
    "cifar10": CIFAR10DataModule,
    "cifar100": CIFAR100DataModule,
    "stl10": STL10DataModule,
    "imagefolder": ImageFolderDataModule,
}


def _datamodule(name: str, data_dir: str | None, image_size: int):
    if name not in DATAMODULES:
        raise ConfigurationError(
            f"datasets: unknown dataset {name!r}; known datasets: {', '.join([*EMBEDDED, *DATAMODULES])}."
        )
    if data_dir is None:
        raise ConfigurationError(f"datasets.{name} needs a data directory: give {name}: /path/to/data, got null.")
    return DATAMODULES[name](data_dir=data_dir, image_size=image_size)


def _class_subset(dataset: TensorImageDataset, classes: tuple[int, ...]) -> TensorImageDataset:
    keep = torch.isin(dataset.labels, torch.tensor(classes))
    relabel = {old: new for new, old in enumerate(classes)}
    labels = torch.tensor([relabel[int(label)] for label in dataset.labels[keep]])
    return TensorImageDataset(dataset.images[keep], labels)
