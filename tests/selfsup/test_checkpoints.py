import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from selfsup.backbones import build_backbone
from selfsup.checkpoints import atomic_save, export_backbone, load_backbone, read_checkpoint
from selfsup.errors import ConfigurationError
from selfsup.methods import SimCLR
from tests.helpers import REPO


def _images():
    return torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_export_round_trip_gives_identical_features(tmp_path):
    torch.manual_seed(0)
    backbone = build_backbone("small_conv", width=8)
    backbone.train()
    backbone(_images() * 3 + 1)  # move the BN running statistics away from their initial values
    backbone.eval()
    export_backbone(tmp_path / "backbone.pt", backbone, "small_conv", {"width": 8}, image_size=16)
    restored, metadata = load_backbone(tmp_path / "backbone.pt")
    assert metadata["image_size"] == 16 and metadata["backbone_kwargs"] == {"width": 8}
    assert torch.equal(restored.eval()(_images()), backbone(_images()))


def test_lightning_checkpoint_loads_the_backbone(tmp_path):
    model = SimCLR(backbone="small_conv", backbone_kwargs={"width": 8})
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, tmp_path / "last.ckpt")
    restored, _ = load_backbone(tmp_path / "last.ckpt")
    assert torch.equal(restored.eval()(_images()), model.backbone.eval()(_images()))


def test_wrapper_prefixes_are_removed_from_bare_state_dicts(tmp_path):
    backbone = build_backbone("small_conv", width=8).eval()
    wrapped = {f"module._orig_mod.{key}": value for key, value in backbone.state_dict().items()}
    torch.save(wrapped, tmp_path / "weights.pt")
    restored, _ = load_backbone(tmp_path / "weights.pt", backbone="small_conv", backbone_kwargs={"width": 8})
    assert torch.equal(restored.eval()(_images()), backbone(_images()))


def test_bare_weights_without_an_architecture_are_refused(tmp_path):
    torch.save(build_backbone("small_conv", width=8).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ConfigurationError, match="without an architecture"):
        load_backbone(tmp_path / "weights.pt")


def test_wrong_architecture_lists_missing_and_unexpected_keys(tmp_path):
    torch.save(build_backbone("small_conv", width=8).state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ConfigurationError, match=r"missing keys \[bn1\..*unexpected keys \[stages\."):
        load_backbone(tmp_path / "weights.pt", backbone="resnet18")


def test_wrong_width_is_a_shape_error_not_a_partial_load(tmp_path):
    export_backbone(tmp_path / "b.pt", build_backbone("small_conv", width=8), "small_conv", {"width": 8})
    payload = torch.load(tmp_path / "b.pt")
    payload["backbone_kwargs"] = {"width": 16}
    torch.save(payload, tmp_path / "b.pt")
    with pytest.raises(ConfigurationError, match="size mismatch"):
        load_backbone(tmp_path / "b.pt")


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    with pytest.raises(ConfigurationError, match="not a readable checkpoint"):
        load_backbone(tmp_path / "notes.ckpt")


def test_truncated_checkpoint_is_refused(tmp_path):
    export_backbone(tmp_path / "b.pt", build_backbone("small_conv", width=8), "small_conv", {"width": 8})
    data = (tmp_path / "b.pt").read_bytes()
    (tmp_path / "b.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigurationError, match="not a readable checkpoint"):
        load_backbone(tmp_path / "b.pt")


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_refused_and_not_run(tmp_path, capsys):
    torch.save({"state_dict": {}, "evil": _Payload()}, tmp_path / "evil.ckpt")
    with pytest.raises(ConfigurationError, match="refusing to load"):
        load_backbone(tmp_path / "evil.ckpt")
    assert "pickled code ran" not in capsys.readouterr().out


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigurationError, match="checkpoint not found"):
        load_backbone(tmp_path / "absent.ckpt")


def test_an_archive_that_inflates_beyond_its_size_is_refused_before_loading(tmp_path, monkeypatch):
    """A few kilobytes that deflate to 32 MiB of tensor data: refused unread, never handed to torch.load."""
    honest = tmp_path / "honest.pt"
    torch.save({"weight": torch.zeros(8 * 2**20)}, honest)
    inflating = tmp_path / "inflating.pt"
    with zipfile.ZipFile(honest) as source, zipfile.ZipFile(inflating, "w", zipfile.ZIP_DEFLATED) as target:
        for record in source.infolist():
            target.writestr(record.filename, source.read(record.filename))
    assert inflating.stat().st_size < 2**20 < honest.stat().st_size
    assert read_checkpoint(honest)["weight"].numel() == 8 * 2**20

    def must_not_load(*args, **kwargs):
        raise AssertionError("torch.load was reached")

    monkeypatch.setattr(torch, "load", must_not_load)
    with pytest.raises(ConfigurationError, match=r"declares 32\.0 MiB of data in a 3\d\.\d KiB file"):
        read_checkpoint(inflating)


def _with_declared_storage_elements(source: Path, target: Path, elements: int) -> None:
    """Rewrite ``source``'s pickle so that its one 4-element float storage declares ``elements``."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as crafted:
        for record in archive.infolist():
            data = archive.read(record.filename)
            if record.filename.endswith("data.pkl"):
                declared = b"J" + struct.pack("<i", elements)
                data = data.replace(b"K\x04t", declared + b"t", 1).replace(b"K\x00K\x04", b"K\x00" + declared, 1)
            crafted.writestr(record, data)


def test_a_storage_declared_larger_than_its_record_is_refused_before_loading(tmp_path, monkeypatch):
    """A 1 KiB file whose pickle declares a 4 GiB tensor: refused from the pickle alone, nothing allocated."""
    honest = tmp_path / "honest.pt"
    torch.save({"weight": torch.zeros(4)}, honest)
    crafted = tmp_path / "crafted.pt"
    _with_declared_storage_elements(honest, crafted, 2**30)
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: pytest.fail("torch.load was reached"))
    with pytest.raises(ConfigurationError, match="storage '0' declares 4294967296 bytes but the file has a record of"):
        read_checkpoint(crafted)
    with pytest.raises(ConfigurationError, match="storage '0' declares"):
        load_backbone(crafted, backbone="resnet18")


def test_storages_of_every_kind_are_measured_as_torch_saves_them(tmp_path):
    """Typed, untyped, views and every dtype width load: the check refuses nothing torch.save writes."""
    path = tmp_path / "mixed.pt"
    tensors = {
        "double": torch.zeros(3, dtype=torch.float64),
        "bfloat16": torch.zeros(5, dtype=torch.bfloat16),
        "bool": torch.zeros(7, dtype=torch.bool),
        "view": torch.arange(10)[2:5],
        "complex": torch.zeros(2, dtype=torch.complex64),
        "empty": torch.zeros(0),
    }
    torch.save({"tensors": tensors, "untyped": torch.zeros(2).untyped_storage()}, path)
    loaded = read_checkpoint(path)
    assert all(torch.equal(loaded["tensors"][key], value) for key, value in tensors.items())


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("0.0000001", "bytes, more than the limit of 107 bytes; raise it with SELFSUP_CHECKPOINT_LIMIT_GIB=<GiB>"),
        ("0", "SELFSUP_CHECKPOINT_LIMIT_GIB must be a finite number of GiB > 0, got '0'"),
        ("-1", "must be a finite number of GiB > 0"),
        ("nan", "must be a finite number of GiB > 0"),
        ("lots", "must be a finite number of GiB > 0, got 'lots'"),
    ],
)
def test_the_checkpoint_size_limit_is_configurable_and_checked(tmp_path, monkeypatch, limit, message):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(4)}, path)
    monkeypatch.setenv("SELFSUP_CHECKPOINT_LIMIT_GIB", limit)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        read_checkpoint(path)
    monkeypatch.setenv("SELFSUP_CHECKPOINT_LIMIT_GIB", "0.001")
    assert torch.equal(read_checkpoint(path)["weight"], torch.zeros(4))


def test_a_write_that_finds_the_disk_full_keeps_the_previous_file(tmp_path):
    """Over the file-size limit (as a full disk): DiskFull naming the file, the old file intact, no temporary."""
    path = tmp_path / "last.ckpt"
    atomic_save({"weight": torch.ones(4)}, path)
    script = (
        "import resource, signal, sys, torch\n"
        "from selfsup.checkpoints import atomic_save\n"
        "from selfsup.errors import DiskFull\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "try:\n"
        "    atomic_save({'weight': torch.zeros(100_000)}, sys.argv[1])\n"
        "except DiskFull as error:\n"
        "    sys.exit(str(error))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=REPO)
    assert f"no space left to write {path} (File too large); the previous last.ckpt is intact" in result.stderr
    assert torch.equal(read_checkpoint(path)["weight"], torch.ones(4))
    assert [entry.name for entry in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_datamodule_that_states_no_input_format_gives_none_not_an_error():
    from selfsup.checkpoints import InputFormat
    from selfsup.data import DigitsDataModule

    assert InputFormat.of(object()) is None
    assert InputFormat.of(DigitsDataModule()) == InputFormat(16, DigitsDataModule.mean, DigitsDataModule.std)
