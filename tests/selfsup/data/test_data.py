import pytest
import torch
from PIL import Image

from selfsup.data import (
    CIFAR10DataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    STL10DataModule,
    digits_split,
)
from selfsup.errors import ConfigurationError


def test_digits_splits_are_fixed_disjoint_and_cover_every_class():
    sizes = {}
    seen = []
    for split in ("train", "val", "test"):
        dataset = digits_split(split, 8)
        sizes[split] = len(dataset)
        assert set(dataset.labels.tolist()) == set(range(10))
        seen.append({bytes(image.numpy()) for image in dataset.images})
    assert sizes == {"train": 1078, "val": 359, "test": 360}
    assert torch.equal(digits_split("train", 8).images, digits_split.__wrapped__("train", 8).images)
    assert sum(map(len, seen)) >= len(set.union(*seen)) > 0.98 * 1797


def test_digits_images_are_real_uint8_rgb_at_the_requested_size():
    dataset = digits_split("train", 16)
    assert dataset.images.shape == (1078, 3, 16, 16) and dataset.images.dtype == torch.uint8
    assert dataset.images.max() == 255 and torch.equal(dataset.images[:, 0], dataset.images[:, 2])


def test_training_batches_hold_two_different_views_and_labels():
    datamodule = DigitsDataModule(batch_size=8, image_size=16)
    datamodule.setup("fit")
    (view_a, view_b), labels = next(iter(datamodule.train_dataloader()))
    assert view_a.shape == view_b.shape == (8, 3, 16, 16) and view_a.dtype == torch.float32
    assert not torch.equal(view_a, view_b)
    assert labels.shape == (8,) and labels.min() >= 0


def test_validation_loaders_are_bank_then_queries_with_indices():
    datamodule = DigitsDataModule(batch_size=64, image_size=16, knn_bank_size=100)
    datamodule.setup("fit")
    bank, queries = datamodule.val_dataloader().values()
    assert len(bank.dataset) == 100 and len(queries.dataset) == 359
    images, labels, indices = next(iter(queries))
    assert images.shape == (64, 3, 16, 16) and torch.equal(indices, torch.arange(64))
    images_again, _, _ = next(iter(datamodule.val_dataloader()["knn_queries"]))
    assert torch.equal(images, images_again)


@pytest.mark.parametrize("datamodule_class", [CIFAR10DataModule, STL10DataModule, ImageFolderDataModule])
def test_missing_dataset_path_names_the_expected_directory(datamodule_class, tmp_path):
    with pytest.raises(ConfigurationError, match=f"expected the directory {tmp_path / 'absent'}"):
        datamodule_class(data_dir=str(tmp_path / "absent"))


def test_cifar_directory_without_the_extracted_folder(tmp_path):
    with pytest.raises(ConfigurationError, match="lacks 'cifar-10-batches-py'"):
        CIFAR10DataModule(data_dir=str(tmp_path))


def _write_image_folder(root, mode="RGB"):
    for split in ("train", "val"):
        for label, colour in (("cat", 40), ("dog", 200)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(3):
                Image.new(mode, (20, 24), color=colour if mode == "L" else (colour,) * len(mode)).save(
                    folder / f"{index}.png"
                )


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_image_folder_yields_rgb_views_whatever_the_file_mode(tmp_path, mode):
    _write_image_folder(tmp_path, mode)
    datamodule = ImageFolderDataModule(data_dir=str(tmp_path), batch_size=2, num_workers=0, image_size=16)
    assert datamodule.num_classes == 2
    datamodule.setup("fit")
    (view_a, _), labels = next(iter(datamodule.train_dataloader()))
    assert view_a.shape == (2, 3, 16, 16)
    images, _, _ = next(iter(datamodule.val_dataloader()["knn_queries"]))
    assert images.shape == (2, 3, 16, 16)


def test_image_folder_with_empty_split_is_refused(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "val").mkdir()
    with pytest.raises(ConfigurationError, match="no class sub-folders"):
        ImageFolderDataModule(data_dir=str(tmp_path))
