"""``selfsup export``: a backbone handed to torchvision, safetensors and detectron2, and read back."""

import pickle
import re

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from selfsup.backbones import build_backbone
from selfsup.checkpoints import export_backbone, load_backbone
from selfsup.cli import main


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A ResNet-18 with random weights and moved running statistics, as this project exports it."""
    torch.manual_seed(0)
    backbone = build_backbone("resnet18")
    backbone.train()
    backbone(torch.randn(8, 3, 32, 32))
    path = tmp_path_factory.mktemp("export") / "backbone.pt"
    export_backbone(path, backbone.eval(), "resnet18", {}, image_size=32, mean=[0.4, 0.4, 0.4], std=[0.2, 0.2, 0.2])
    return path, backbone


@pytest.fixture(scope="module")
def images():
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _export(*arguments: str) -> None:
    main(["export", *arguments])


def _torchvision_trunk() -> nn.Module:
    network = torchvision.models.resnet18(weights=None)
    network.fc = nn.Identity()
    return network.eval()


def test_the_torchvision_format_loads_strictly_into_torchvision_and_gives_the_same_features(tmp_path, exported, images):
    path, backbone = exported
    _export(str(path), "--to", "torchvision", "--output", str(tmp_path / "r18.pth"))
    network = _torchvision_trunk()
    network.load_state_dict(torch.load(tmp_path / "r18.pth", weights_only=True), strict=True)
    with torch.no_grad():
        assert torch.equal(network(images), backbone(images))


def test_safetensors_round_trip_keeps_weights_architecture_and_input_format(tmp_path, exported, images):
    path, backbone = exported
    _export(str(path), "--to", "safetensors", "--output", str(tmp_path / "r18.safetensors"))
    restored, metadata = load_backbone(tmp_path / "r18.safetensors")
    assert (metadata["backbone"], metadata["image_size"], metadata["mean"]) == ("resnet18", 32, [0.4, 0.4, 0.4])
    with torch.no_grad():
        assert torch.equal(restored.eval()(images), backbone(images))


def _from_detectron2(name: str) -> str:
    """The inverse of MoCo's conversion, to read the file back into torchvision."""
    name = name.removeprefix("stem.")
    name = name.replace("shortcut.norm", "downsample.1").replace("shortcut", "downsample.0")
    name = re.sub(r"conv(\d)\.norm", r"bn\1", name)
    return re.sub(r"res(\d)", lambda match: f"layer{int(match.group(1)) - 1}", name)


def test_the_detectron2_format_has_mocos_names_and_reads_back_to_the_same_features(tmp_path, exported, images):
    path, backbone = exported
    _export(str(path), "--to", "detectron2", "--output", str(tmp_path / "r18.pkl"))
    payload = pickle.loads((tmp_path / "r18.pkl").read_bytes())
    assert payload["matching_heuristics"] is True
    model = payload["model"]
    for name in ("stem.conv1.weight", "stem.conv1.norm.running_var", "res2.0.conv1.norm.weight", "res5.1.conv2.weight"):
        assert name in model, name
    assert "res3.0.shortcut.weight" in model and "res3.0.shortcut.norm.bias" in model
    assert not any("num_batches_tracked" in name or "layer" in name or "bn" in name for name in model)
    network = _torchvision_trunk()
    state = {_from_detectron2(name): torch.from_numpy(value) for name, value in model.items()}
    missing, unexpected = network.load_state_dict(state, strict=False)
    assert not unexpected and all(name.endswith("num_batches_tracked") for name in missing)
    with torch.no_grad():
        assert torch.equal(network(images), backbone(images))


def test_a_foreign_file_exports_with_its_architecture_named(tmp_path, images, capsys):
    torch.manual_seed(3)
    source = torchvision.models.resnet18(weights=None).eval()
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "m.pth")
    _export(str(tmp_path / "m.pth"), "--backbone", "resnet18", "--to", "torchvision", "--output", str(tmp_path / "o"))
    assert "query encoder of a MoCo v1/v2 checkpoint" in capsys.readouterr().out
    network = _torchvision_trunk()
    network.load_state_dict(torch.load(tmp_path / "o", weights_only=True), strict=True)
    source.fc = nn.Identity()
    with torch.no_grad():
        assert torch.equal(network(images), source(images))


def test_another_tools_safetensors_file_is_read_as_a_state_dict(tmp_path, images):
    torch.manual_seed(4)
    source = torchvision.models.resnet18(weights=None).eval()
    save_file(source.state_dict(), tmp_path / "model.safetensors", metadata={"format": "pt"})
    restored, metadata = load_backbone(tmp_path / "model.safetensors", backbone="resnet18")
    assert "fc.*" in metadata["source"]
    source.fc = nn.Identity()
    with torch.no_grad():
        assert torch.equal(restored.eval()(images), source(images))


def _refused(arguments: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        _export(*arguments)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_an_existing_output_is_kept_unless_overwrite_is_given(tmp_path, exported, capsys):
    path, _ = exported
    (tmp_path / "out.pth").write_bytes(b"precious")
    arguments = [str(path), "--to", "torchvision", "--output", str(tmp_path / "out.pth")]
    assert "exists; give another path, or --overwrite" in _refused(arguments, capsys)
    assert (tmp_path / "out.pth").read_bytes() == b"precious"
    _export(*arguments, "--overwrite")
    assert (tmp_path / "out.pth").read_bytes() != b"precious"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--to", "onnx"], "invalid choice: 'onnx'"),
        (["--backbone-kwargs", "[1]"], "--backbone-kwargs must be a JSON object"),
        (["--backbone-kwargs", "{width"], "--backbone-kwargs must be a JSON object"),
        (["--output", "."], "is a directory"),
    ],
)
def test_bad_options_are_one_line(tmp_path, exported, capsys, change, message):
    path, _ = exported
    options = {"--to": "torchvision", "--output": str(tmp_path / "o.pth"), "--backbone-kwargs": "{}"}
    options.update(dict(zip(change[::2], change[1::2])))
    arguments = [str(path)] + [item for pair in options.items() for item in pair]
    assert message in _refused(arguments, capsys)
    assert not (tmp_path / "o.pth").exists()


def test_a_network_without_a_torchvision_counterpart_is_refused_for_torchvision(tmp_path, capsys):
    export_backbone(tmp_path / "b.pt", build_backbone("small_conv", width=8), "small_conv", {"width": 8})
    for to in ("torchvision", "detectron2"):
        err = _refused([str(tmp_path / "b.pt"), "--to", to, "--output", str(tmp_path / "o")], capsys)
        assert "has no torchvision counterpart: export it as safetensors" in err
    assert not (tmp_path / "o").exists()
