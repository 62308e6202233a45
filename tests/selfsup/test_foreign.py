"""Other projects' checkpoints: each convention, built from a random torchvision ResNet-18, loads exactly.

Every file here has the shape of a public release (the names, the nesting, the heads,
momentum encoders and queues beside the backbone); the backbone loaded from it must give
exactly the features of the network the file was made from, and the report must name
what was dropped.
"""

import pytest
import torch
import torchvision
from torch import nn

from selfsup.checkpoints import load_backbone
from selfsup.errors import ConfigurationError


def _resnet18(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    network = torchvision.models.resnet18(weights=None)
    network.train()
    network(torch.randn(8, 3, 32, 32))  # running statistics away from their initial values
    return network.eval()


@pytest.fixture(scope="module")
def source():
    return _resnet18(0)


@pytest.fixture(scope="module")
def other():
    return _resnet18(1)


@pytest.fixture(scope="module")
def images():
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def _features(network: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The torchvision network without its classifier: pooled ``layer4`` features."""
    with torch.no_grad():
        return nn.Sequential(*list(network.children())[:-1])(images).flatten(1)


def _trunk(network: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value for key, value in network.state_dict().items() if not key.startswith("fc.")}


def _under(prefix: str, state_dict: dict) -> dict:
    return {f"{prefix}{key}": value for key, value in state_dict.items()}


def _mlp(prefix: str, dims=(512, 64, 16)) -> dict:
    layers = {}
    for index, (fan_in, fan_out) in enumerate(zip(dims, dims[1:])):
        layers[f"{prefix}{2 * index}.weight"] = torch.randn(fan_out, fan_in)
        layers[f"{prefix}{2 * index}.bias"] = torch.randn(fan_out)
    return layers


def _conventions(source: nn.Module, other: nn.Module) -> dict[str, tuple[dict, str, list[str]]]:
    """name -> (payload, the prefix that holds ``source``, groups that must be reported as dropped)."""
    trunk, momentum = _trunk(source), _trunk(other)
    lightly = {f"backbone.{index}.{key.split('.', 1)[1]}": value for key, value in trunk.items() for index, child in
               enumerate(["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"])
               if key.split(".", 1)[0] == child}  # fmt: skip
    vissl_trunk = _under("_feature_blocks.", trunk)
    return {
        "torchvision": (source.state_dict(), "", ["fc.*"]),
        "DataParallel": (_under("module.", source.state_dict()), "module.", ["module.fc.*"]),
        "MoCo v2 release": (
            {
                "epoch": 200,
                "arch": "resnet18",
                "state_dict": _under("module.encoder_q.", trunk)
                | _mlp("module.encoder_q.fc.")
                | _under("module.encoder_k.", momentum)
                | _mlp("module.encoder_k.fc.")
                | {"module.queue": torch.randn(16, 64), "module.queue_ptr": torch.zeros(1, dtype=torch.long)},
                "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}}, "param_groups": [{"lr": 0.03}]},
            },
            "state_dict.module.encoder_q.",
            ["state_dict.module.encoder_k.*", "state_dict.module.encoder_q.fc.*", "state_dict.module.queue"],
        ),
        "MoCo v3 release": (
            {
                "state_dict": _under("module.base_encoder.", trunk)
                | _mlp("module.base_encoder.fc.")
                | _under("module.momentum_encoder.", momentum)
                | _mlp("module.momentum_encoder.fc.")
                | _mlp("module.predictor.", (16, 32, 16)),
            },
            "state_dict.module.base_encoder.",
            ["state_dict.module.momentum_encoder.*", "state_dict.module.predictor.*"],
        ),
        "DINO release": (
            {
                "student": _under("module.backbone.", momentum) | _mlp("module.head.mlp."),
                "teacher": _under("backbone.", trunk) | _mlp("head.mlp."),
                "dino_loss": {"center": torch.zeros(1, 16)},
                "epoch": 100,
            },
            "teacher.backbone.",
            ["student.*", "teacher.head.*", "dino_loss.*"],
        ),
        "SimCLR converted to PyTorch": ({"state_dict": source.state_dict()}, "state_dict.", ["state_dict.fc.*"]),
        "SimCLR encoder and projector": (
            _under("encoder.", source.state_dict()) | _mlp("projector."),
            "encoder.",
            ["encoder.fc.*", "projector.*"],
        ),
        "solo-learn": (
            {
                "state_dict": _under("backbone.", trunk)
                | _under("momentum_backbone.", momentum)
                | _mlp("projector.")
                | {"classifier.weight": torch.randn(10, 512), "classifier.bias": torch.randn(10)},
                "hyper_parameters": {"backbone": {"name": "resnet18", "kwargs": {}}, "method": "byol"},
                "epoch": 400,
            },
            "state_dict.backbone.",
            ["state_dict.classifier.*", "state_dict.momentum_backbone.*", "state_dict.projector.*"],
        ),
        "lightly Sequential backbone": (
            {"state_dict": lightly | _mlp("projection_head.layers."), "epoch": 10},
            "state_dict.backbone.",
            ["state_dict.projection_head.*"],
        ),
        "mmselfsup": (
            {
                "meta": {"mmselfsup_version": "1.0", "epoch": 200},
                "state_dict": _under("backbone.", trunk) | _mlp("neck.mlp.") | {"head.temperature": torch.ones(())},
            },
            "state_dict.backbone.",
            ["state_dict.head.*", "state_dict.neck.*"],
        ),
        "VISSL": (
            {
                "phase_idx": 3,
                "classy_state_dict": {
                    "base_model": {"model": {"trunk": vissl_trunk, "heads": _mlp("0.clf.")}, "meta": {}},
                },
            },
            "classy_state_dict.base_model.model.trunk._feature_blocks.",
            ["classy_state_dict.base_model.model.heads.*"],
        ),
    }


CONVENTIONS = [
    "torchvision",
    "DataParallel",
    "MoCo v2 release",
    "MoCo v3 release",
    "DINO release",
    "SimCLR converted to PyTorch",
    "SimCLR encoder and projector",
    "solo-learn",
    "lightly Sequential backbone",
    "mmselfsup",
    "VISSL",
]


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_each_convention_loads_the_source_network_exactly_and_reports_what_it_dropped(
    tmp_path, source, other, images, convention
):
    payload, prefix, dropped = _conventions(source, other)[convention]
    torch.save(payload, tmp_path / "foreign.pth")
    backbone, metadata = load_backbone(tmp_path / "foreign.pth", backbone="resnet18")
    assert torch.equal(backbone.eval()(images), _features(source, images))
    assert f"({prefix!r})" in metadata["source"]
    for group in dropped:
        assert group in metadata["source"], (group, metadata["source"])


def test_the_report_names_the_convention(tmp_path, source, other):
    payload, _, _ = _conventions(source, other)["MoCo v2 release"]
    torch.save(payload, tmp_path / "moco.pth.tar")
    _, metadata = load_backbone(tmp_path / "moco.pth.tar", backbone="resnet18")
    assert metadata["source"].startswith(f"took {len(_trunk(source))} tensors of the query encoder of a MoCo v1/v2")


def test_two_sets_that_fit_equally_are_refused_with_both_and_a_prefix_chooses(tmp_path, source, other, images):
    torch.save({"first": _trunk(other), "second": _trunk(source)}, tmp_path / "two.pt")
    with pytest.raises(ConfigurationError, match=r"2 sets of tensors .* fit .*'first\.', 'second\.'.*prefix"):
        load_backbone(tmp_path / "two.pt", backbone="resnet18")
    backbone, _ = load_backbone(tmp_path / "two.pt", backbone="resnet18", prefix="second.")
    assert torch.equal(backbone.eval()(images), _features(source, images))


def test_a_prefix_that_does_not_fit_is_refused_naming_what_is_missing(tmp_path, source):
    torch.save({"state_dict": _under("backbone.", _trunk(source))}, tmp_path / "solo.ckpt")
    with pytest.raises(ConfigurationError, match=r"under prefix 'backbone\.' do not fit: the whole file|missing keys"):
        load_backbone(tmp_path / "solo.ckpt", backbone="resnet18", prefix="backbone.")


def test_the_student_of_dino_is_taken_when_asked(tmp_path, source, other, images):
    payload, _, _ = _conventions(source, other)["DINO release"]
    torch.save(payload, tmp_path / "dino.pth")
    backbone, _ = load_backbone(tmp_path / "dino.pth", backbone="resnet18", prefix="student.module.backbone.")
    assert torch.equal(backbone.eval()(images), _features(other, images))


def test_another_architecture_is_refused_with_its_missing_and_unexpected_keys(tmp_path, source):
    torch.save({"state_dict": _under("module.encoder_q.", _trunk(source))}, tmp_path / "moco.pth")
    with pytest.raises(ConfigurationError, match=r"under 'state_dict\.module\.encoder_q\.': missing keys \[layer1\.2"):
        load_backbone(tmp_path / "moco.pth", backbone="resnet34")


def test_a_missing_tensor_is_never_loaded_half_way(tmp_path, source):
    trunk = _trunk(source)
    del trunk["layer4.1.bn2.running_var"]
    torch.save(trunk, tmp_path / "partial.pt")
    with pytest.raises(ConfigurationError, match=r"missing keys \[layer4\.1\.bn2\.running_var\]"):
        load_backbone(tmp_path / "partial.pt", backbone="resnet18")


def test_prefixes_are_removed_whole_never_character_by_character(tmp_path, source, images):
    """``str.lstrip('module.encoder_q.')`` would eat the ``c``, ``o``, ``n`` of ``conv1``: slicing keeps it."""
    torch.save(_under("module.encoder_q.", _trunk(source)), tmp_path / "q.pt")
    backbone, _ = load_backbone(tmp_path / "q.pt", backbone="resnet18")
    assert torch.equal(backbone.eval()(images), _features(source, images))


def test_a_foreign_file_without_an_architecture_asks_for_one_in_its_entry(tmp_path, source):
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ConfigurationError, match=r"name it in the checkpoint's entry, e\.g\. \{path: \.\.\., backbone"):
        load_backbone(tmp_path / "resnet18.pth")


def test_this_projects_file_under_another_architecture_is_refused(tmp_path):
    from selfsup.backbones import build_backbone
    from selfsup.checkpoints import export_backbone

    export_backbone(tmp_path / "b.pt", build_backbone("small_conv", width=8), "small_conv", {"width": 8})
    with pytest.raises(ConfigurationError, match="holds backbone 'small_conv'.*not the 'resnet18'"):
        load_backbone(tmp_path / "b.pt", backbone="resnet18")
    backbone, _ = load_backbone(tmp_path / "b.pt", backbone="small_conv", backbone_kwargs={"width": 8})
    assert backbone.feature_dim > 0
