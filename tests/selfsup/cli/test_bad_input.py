"""Bad input that the other test files do not already cover: one message, non-zero exit, nothing lost.

The README's table "Faults and bad input" lists every case and the test that covers it.
"""

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from selfsup.cli.boundary import without_worker_traceback
from selfsup.data import ImageFolderDataModule
from selfsup.data.folder import CorruptImageError
from selfsup.errors import ConfigurationError
from selfsup.runtime.devices import check_devices
from tests.helpers import REPO

DIGITS = str(REPO / "configs" / "pretrain" / "simclr_digits.yaml")


def _assert_clean_error(result, *fragments):
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "usage:" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr[-3000:]


def test_wrong_type_in_config_names_the_key_and_the_value(run_cli):
    _assert_clean_error(run_cli("fit", "--config", DIGITS, "--data.init_args.batch_size", "many"), "batch_size", "many")


@pytest.mark.parametrize(
    ("accelerator", "devices", "message"),
    [
        ("cpu", 3, "asks for 3 cpu devices but this machine has 2 CPU cores"),
        ("cpu", "0,1,2", "asks for 3 cpu devices"),
        ("gpu", 1, "no CUDA GPU is visible here"),
    ],
)
def test_more_devices_than_exist_are_refused(monkeypatch, accelerator, devices, message):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ConfigurationError, match=message):
        check_devices(accelerator, devices)
    check_devices("cpu", 2)


def test_more_devices_than_exist_stop_the_command(run_cli):
    _assert_clean_error(run_cli("fit", "--config", DIGITS, "--trainer.devices", "512"), "at most")


def _folder_with_a_corrupt_file(root):
    for split in ("train", "val"):
        for label in ("cat", "dog"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(2):
                Image.new("RGB", (20, 20), color=(40 * index, 90, 200)).save(folder / f"{index}.png")
    corrupt = root / "train" / "cat" / "1.png"
    corrupt.write_bytes(corrupt.read_bytes()[:40])
    return corrupt


def test_corrupt_image_stops_naming_the_file(tmp_path):
    corrupt = _folder_with_a_corrupt_file(tmp_path)
    datamodule = ImageFolderDataModule(str(tmp_path), batch_size=4, num_workers=0, image_size=16)
    datamodule.setup("fit")
    with pytest.raises(CorruptImageError, match=f"cannot decode {corrupt}.*on_corrupt_image: skip"):
        next(iter(datamodule.train_dataloader()))


def test_corrupt_image_in_a_worker_process_is_reported_without_the_worker_traceback(tmp_path):
    corrupt = _folder_with_a_corrupt_file(tmp_path)
    datamodule = ImageFolderDataModule(str(tmp_path), batch_size=4, num_workers=1, image_size=16)
    datamodule.setup("fit")
    with pytest.raises(CorruptImageError) as raised:
        next(iter(DataLoader(datamodule._splits[0], batch_size=4, num_workers=1, collate_fn=list)))
    assert without_worker_traceback(str(raised.value)).startswith(f"cannot decode {corrupt} (")


def test_corrupt_image_is_skipped_and_counted_when_configured(tmp_path, capsys):
    corrupt = _folder_with_a_corrupt_file(tmp_path)
    datamodule = ImageFolderDataModule(
        str(tmp_path), batch_size=4, num_workers=0, image_size=16, on_corrupt_image="skip"
    )
    datamodule.setup("fit")
    with pytest.warns(UserWarning, match=f"skipped corrupt image {corrupt}"):
        (view_a, view_b), labels = next(iter(datamodule.train_dataloader()))
    assert view_a.shape == (4, 3, 16, 16) and torch.isfinite(view_a).all()
    assert datamodule._splits[0].corrupt_files() == [str(corrupt)]
    datamodule.teardown("fit")
    assert f"skipped 1 corrupt image file(s): {corrupt}" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["text", "empty", "huge"])
def test_every_kind_of_undecodable_file_follows_the_corrupt_image_policy(tmp_path, monkeypatch, kind):
    corrupt = _folder_with_a_corrupt_file(tmp_path)
    if kind == "text":
        corrupt.write_text("this is not an image\n")
    elif kind == "empty":
        corrupt.write_bytes(b"")
    else:  # beyond PIL's pixel limit: a decompression bomb, as far as the decoder can tell
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # the other images have 400 pixels
        Image.new("RGB", (40, 40)).save(corrupt)
    datamodule = ImageFolderDataModule(str(tmp_path), batch_size=4, num_workers=0, image_size=16)
    datamodule.setup("fit")
    with pytest.raises(CorruptImageError, match=f"cannot decode {corrupt}"):
        next(iter(datamodule.train_dataloader()))
