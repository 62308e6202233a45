"""Bad input to ``selfsup evaluate``, one row a case: refused before any work, in one line, nothing written.

Each row: an id, the change to a small valid evaluation config (dotted key -> value; the
value ``DELETE`` removes the key), the expected exit code and a fragment of the expected
message. ``{files}`` in a value is the module's directory of prepared files (checkpoints,
broken checkpoints, a finished evaluation of another config), ``{work}`` the test's own
directory. Every row runs in this process; afterwards neither directory holds anything
new or changed, and the output directory was not created. A value the command wrongly
accepted would run kNN on one small network and fail the row. Adding a case is adding a line.
"""

import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from selfsup.cli import main
from tests.helpers import random_digits_backbone

DELETE = object()

A, BARE = "{files}/a.pt", "{files}/bare.pt"

ROWS = [
    # The kNN protocol.
    ("knn k zero", {"knn.k": 0}, 2, "knn.k must be >= 1"),
    ("knn k negative", {"knn.k": -3}, 2, "knn.k must be >= 1"),
    ("knn k not an integer", {"knn.k": 2.5}, 2, "knn.k"),
    ("knn k not a number", {"knn.k": "many"}, 2, "knn.k"),
    ("knn k beyond the labelled examples", {"knn.k": 1000}, 2, "knn.k must be <= 50"),
    ("knn temperature zero", {"knn.temperature": 0}, 2, "knn.temperature must be a finite number > 0"),
    ("knn temperature negative", {"knn.temperature": -0.07}, 2, "knn.temperature must be"),
    ("knn temperature NaN", {"knn.temperature": float("nan")}, 2, "knn.temperature must be"),
    ("knn temperature infinite", {"knn.temperature": float("inf")}, 2, "knn.temperature must be"),
    ("knn temperature not a number", {"knn.temperature": "cold"}, 2, "knn.temperature"),
    ("knn unknown key", {"knn.neighbours": 5}, 2, "neighbours"),
    # The linear probe (and the layer-wise probe, which uses its recipe).
    ("linear epochs zero", {"linear.epochs": 0}, 2, "linear.epochs must be >= 1"),
    ("linear epochs negative", {"linear.epochs": -1}, 2, "linear.epochs must be >= 1"),
    ("linear epochs not an integer", {"linear.epochs": 1.5}, 2, "linear.epochs"),
    ("linear lr zero", {"linear.lr": 0}, 2, "linear.lr must be a finite number > 0"),
    ("linear lr negative", {"linear.lr": -0.1}, 2, "linear.lr must be"),
    ("linear lr NaN", {"linear.lr": float("nan")}, 2, "linear.lr must be"),
    ("linear lr infinite", {"linear.lr": float("inf")}, 2, "linear.lr must be"),
    ("linear lr not a number", {"linear.lr": "fast"}, 2, "linear.lr"),
    ("linear weight decay negative", {"linear.weight_decay": -1e-4}, 2, "linear.weight_decay must be"),
    ("linear weight decay NaN", {"linear.weight_decay": float("nan")}, 2, "linear.weight_decay must be"),
    ("linear momentum one", {"linear.momentum": 1.0}, 2, "linear.momentum must be in [0, 1)"),
    ("linear batch zero", {"linear.batch_size": 0}, 2, "linear.batch_size must be >= 1"),
    ("linear batch negative", {"linear.batch_size": -64}, 2, "linear.batch_size must be >= 1"),
    ("linear unknown schedule", {"linear.schedule": "linear"}, 2, "linear.schedule"),
    ("linear crop scale reversed", {"linear.crop_scale": [0.9, 0.1]}, 2, "linear.crop_scale"),
    ("linear crop scale of one number", {"linear.crop_scale": [0.5]}, 2, "linear.crop_scale"),
    ("linear flip above one", {"linear.flip_prob": 1.5}, 2, "linear.flip_prob"),
    ("linear caching augmented images", {"linear.augment": True}, 2, "linear.cache_features"),
    ("layerwise alone, linear batch zero", {"protocols": ["layerwise"], "linear.batch_size": 0}, 2, "linear.batch"),
    # The transferability protocol's settings.
    ("transferability unknown score", {"transferability.scores": ["leep2"]}, 2, "transferability.scores must be"),
    ("transferability score twice", {"transferability.scores": ["gbc", "gbc"]}, 2, "naming each score once"),
    ("transferability scores not a list", {"transferability.scores": "gbc"}, 2, "transferability.scores"),
    ("transferability rank by a score not computed", {"transferability.scores": ["gbc"]}, 2, "rank_by must be one"),
    ("transferability rank by nothing", {"transferability.rank_by": ""}, 2, "transferability.rank_by must be"),
    ("transferability bootstrap negative", {"transferability.bootstrap": -1}, 2, "transferability.bootstrap must be"),
    ("transferability bootstrap huge", {"transferability.bootstrap": 10**9}, 2, "transferability.bootstrap must be"),
    ("transferability bootstrap not an integer", {"transferability.bootstrap": 2.5}, 2, "transferability.bootstrap"),
    ("transferability layers not a boolean", {"transferability.layers": "often"}, 2, "transferability.layers"),
    ("transferability unknown key", {"transferability.resamples": 10}, 2, "resamples"),
    # Logistic regression.
    ("logistic weight decay negative", {"logistic.weight_decay": -1}, 2, "logistic.weight_decay must be"),
    ("logistic weight decay infinite", {"logistic.weight_decay": float("inf")}, 2, "logistic.weight_decay"),
    ("logistic iterations zero", {"logistic.max_iter": 0}, 2, "logistic.max_iter must be >= 1"),
    ("logistic iterations not an integer", {"logistic.max_iter": "all"}, 2, "logistic.max_iter"),
    # Fine-tuning.
    ("finetune epochs zero", {"finetune.epochs": 0}, 2, "finetune.epochs must be >= 1"),
    ("finetune lr NaN", {"finetune.lr": float("nan")}, 2, "finetune.lr must be"),
    ("finetune batch zero", {"finetune.batch_size": 0}, 2, "finetune.batch_size must be >= 1"),
    ("finetune weight decay negative", {"finetune.weight_decay": -5e-4}, 2, "finetune.weight_decay must be"),
    ("finetune backbone lr zero", {"finetune.backbone_lr": 0}, 2, "finetune.backbone_lr must be null or > 0"),
    ("finetune layer decay infinite", {"finetune.layer_decay": float("inf")}, 2, "finetune.layer_decay"),
    ("finetune frozen stages negative", {"finetune.frozen_stages": -1}, 2, "finetune.frozen_stages must be"),
    ("finetune frozen stages beyond", {"finetune.frozen_stages": 9}, 2, "finetune.frozen_stages must be in [0, 4]"),
    ("finetune crop scale zero", {"finetune.crop_scale": [0.0, 1.0]}, 2, "finetune.crop_scale"),
    # The labels.
    ("label fraction zero", {"labels_per_class": None, "label_fraction": 0}, 2, "label_fraction must lie in (0, 1]"),
    ("label fraction above one", {"labels_per_class": None, "label_fraction": 1.0001}, 2, "label_fraction must"),
    ("label fraction NaN", {"labels_per_class": None, "label_fraction": float("nan")}, 2, "label_fraction must"),
    ("label fraction not a number", {"label_fraction": "half"}, 2, "label_fraction"),
    ("label fraction beside labels per class", {"label_fraction": 0.5}, 2, "not both"),
    ("labels per class zero", {"labels_per_class": 0}, 2, "labels_per_class must be"),
    ("labels per class negative", {"labels_per_class": -5}, 2, "labels_per_class must be"),
    ("labels per class beyond a class", {"labels_per_class": 1000}, 2, "labels_per_class must be <= "),
    # The seeds.
    ("seeds empty", {"seeds": []}, 2, "seeds must list at least one seed"),
    ("seed negative", {"seeds": [-1]}, 2, "seeds must be"),
    ("seeds duplicated", {"seeds": [0, 1, 0]}, 2, "each once"),
    ("seeds not a list", {"seeds": 3}, 2, "seeds"),
    ("seed not an integer", {"seeds": [0.5]}, 2, "seeds"),
    ("seed beyond 64 bits", {"seeds": [2**64]}, 2, "seeds must be"),
    # The protocols.
    ("unknown protocol", {"protocols": ["svm"]}, 2, "protocols"),
    ("no protocol", {"protocols": []}, 2, "protocols must list at least one protocol"),
    ("protocol listed twice", {"protocols": ["knn", "knn"]}, 2, "protocols must list each protocol once"),
    ("protocols not a list", {"protocols": 7}, 2, "protocols"),
    ("unknown top-level key", {"protocol": ["knn"]}, 2, "protocol"),
    # The checkpoints.
    ("no checkpoint", {"checkpoints": {}}, 2, "give at least one checkpoint"),
    ("checkpoint missing", {"checkpoints.a": "{files}/nowhere.pt"}, 2, "checkpoints.a: checkpoint not found"),
    ("checkpoint empty file", {"checkpoints.a": "{files}/empty.pt"}, 2, "checkpoints.a: "),
    ("checkpoint truncated", {"checkpoints.a": "{files}/truncated.pt"}, 2, "is not a readable checkpoint"),
    ("checkpoint a directory", {"checkpoints.a": "{files}/run"}, 2, "is a directory, not a checkpoint file"),
    ("checkpoint a text file", {"checkpoints.a": "{files}/notes.txt"}, 2, "is not a readable checkpoint"),
    ("checkpoint with pickled code", {"checkpoints.a": "{files}/pickled.pt"}, 2, "refusing to load"),
    ("checkpoint of another architecture", {"checkpoints.a": "{files}/mislabelled.pt"}, 2, "does not fit backbone"),
    ("checkpoint of bare weights", {"checkpoints.a": "{files}/bare.pt"}, 2, "weights without an architecture"),
    ("checkpoint path null", {"checkpoints.a": None}, 2, "checkpoints"),
    ("checkpoint path empty", {"checkpoints.a": ""}, 2, "checkpoints.a must be the path of a backbone.pt"),
    ("checkpoint entry path empty", {"checkpoints.a": {"path": " "}}, 2, "checkpoints.a.path must be a file path"),
    ("checkpoint entry without a path", {"checkpoints.a": {"backbone": "resnet18"}}, 2, "checkpoints.a needs a path"),
    ("checkpoint entry unknown key", {"checkpoints.a": {"path": "x.pt", "arch": "r18"}}, 2, "unknown key(s) ['arch']"),
    ("checkpoint entry a list", {"checkpoints.a": ["x.pt"]}, 2, "checkpoints"),
    ("entry image size zero", {"checkpoints.a": {"path": A, "image_size": 0}}, 2, "a.image_size must be an integer in"),
    ("entry image size huge", {"checkpoints.a": {"path": A, "image_size": 10**6}}, 2, "a.image_size must be"),
    ("entry std zero", {"checkpoints.a": {"path": A, "std": [0, 1, 1]}}, 2, "a.std must be three finite numbers > 0"),
    ("entry mean of two channels", {"checkpoints.a": {"path": A, "mean": [0.5, 0.5]}}, 2, "a.mean must be three"),
    ("entry mean NaN", {"checkpoints.a": {"path": A, "mean": [0.5, float("nan"), 0.5]}}, 2, "a.mean must be"),
    ("entry contradicting the file", {"checkpoints.a": {"path": A, "image_size": 32}}, 2, "records image_size 16 but"),
    ("entry naming another backbone", {"checkpoints.a": {"path": A, "backbone": "resnet18"}}, 2, "holds backbone"),
    ("entry backbone unknown", {"checkpoints.a": {"path": BARE, "backbone": "resnet9000"}}, 2, "unknown backbone"),
    ("entry kwargs alone", {"checkpoints.a": {"path": BARE, "backbone_kwargs": {"width": 8}}}, 2, "given with"),
    (
        "entry prefix not fitting",
        {"checkpoints.a": {"path": BARE, "backbone": "small_conv", "prefix": "module."}},
        2,
        "under prefix 'module.' do not fit",
    ),
    ("checkpoint named like a baseline", {"checkpoints": {"raw pixels": "{files}/a.pt"}}, 2, "baseline row"),
    ("checkpoint name given twice", {"RAW": "checkpoints:\n  a: {files}/a.pt\n  a: {files}/b.pt\n"}, 2, "twice"),
    # The datasets.
    ("no dataset", {"datasets": {}}, 2, "one dataset"),
    ("unknown dataset", {"datasets": {"mnist": None}}, 2, "unknown dataset 'mnist'"),
    ("dataset without its directory", {"datasets": {"cifar10": None}}, 2, "datasets.cifar10 needs a data directory"),
    ("dataset directory missing", {"datasets": {"cifar10": "{files}/nowhere"}}, 2, "expected the directory"),
    ("image folder empty", {"datasets": {"imagefolder": "{files}/empty_dir"}}, 2, "imagefolder"),
    ("embedded dataset given a directory", {"datasets": {"digits": "{files}/run"}}, 2, "takes no data directory"),
    # The hardware.
    ("extraction batch zero", {"hardware.batch_size": 0}, 2, "hardware.batch_size must be an integer >= 1"),
    ("workers negative", {"hardware.num_workers": -1}, 2, "hardware.num_workers must be an integer >= 0"),
    ("nodes zero", {"hardware.num_nodes": 0}, 2, "hardware.num_nodes must be an integer >= 1"),
    ("more devices than cores", {"hardware.devices": 512}, 2, "hardware.devices asks for 512"),
    ("unknown precision", {"hardware.precision": "bf17"}, 2, "hardware"),
    ("unknown accelerator", {"hardware.accelerator": "abacus"}, 2, "hardware"),
    # The output directory.
    ("output directory is a file", {"output_dir": "{files}/notes.txt"}, 2, "notes.txt is a file, not a directory"),
    ("output directory under a file", {"output_dir": "{files}/notes.txt/eval"}, 2, "cannot write the results"),
    ("output directory empty", {"output_dir": ""}, 2, "output_dir must be"),
    ("output directory unwritable", {"output_dir": "{work}/read-only/eval"}, 2, "cannot write the results"),
    ("output holds another matrix", {"output_dir": "{work}/other"}, 2, "holds the results of another matrix"),
    ("cells file is a directory", {"output_dir": "{work}/cells-dir"}, 2, "cells.jsonl"),
    ("cells file not text", {"output_dir": "{work}/cells-binary"}, 2, "cells.jsonl"),
    ("config file missing", {"CONFIG": "{files}/nowhere.yaml"}, 2, "nowhere.yaml"),
]


class RunsCode:
    """Unpickling this would run code: it creates a marker directory beside the checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def base_config(files: Path, work: Path) -> dict:
    """A valid evaluation: every protocol on one width-8 net, 5 labelled digits per class, one seed, one epoch."""
    return {
        "checkpoints": {"a": str(files / "a.pt")},
        "datasets": {"digits": None},
        "protocols": ["knn", "linear", "logistic", "logme", "layerwise", "finetune", "transferability"],
        "labels_per_class": 5,
        "seeds": [0],
        "random_init_baseline": False,
        "output_dir": str(work / "out" / "eval"),
        "knn": {"k": 5, "temperature": 0.07},
        "linear": {"epochs": 1, "batch_size": 64, "lr": 0.1, "augment": False, "cache_features": True},
        "logistic": {"max_iter": 5},
        "finetune": {"epochs": 1, "batch_size": 64},
        "transferability": {"layers": True, "bootstrap": 10},
        "hardware": {"accelerator": "cpu", "devices": 1, "batch_size": 256, "num_workers": 0},
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Checkpoints good and bad, an empty directory, and a finished evaluation of another matrix."""
    files = tmp_path_factory.mktemp("evaluate-inputs")
    good = random_digits_backbone(files / "a.pt", 1)
    random_digits_backbone(files / "b.pt", 2)
    (files / "empty.pt").touch()
    data = Path(good).read_bytes()
    (files / "truncated.pt").write_bytes(data[: len(data) // 2])
    (files / "notes.txt").write_text("not a checkpoint\n")
    (files / "run").mkdir()
    (files / "empty_dir").mkdir()
    torch.save({"weights": RunsCode(files / "code-ran")}, files / "pickled.pt")
    payload = torch.load(good, weights_only=True)
    torch.save({**payload, "backbone": "resnet18", "backbone_kwargs": {}}, files / "mislabelled.pt")
    torch.save(payload["state_dict"], files / "bare.pt")
    other = base_config(files, files) | {"checkpoints": {"b": str(files / "b.pt")}, "protocols": ["knn"]}
    other["output_dir"] = str(files / "other")
    (files / "other.yaml").write_text(yaml.safe_dump(other))
    main(["evaluate", "--config", str(files / "other.yaml")])
    return files


@pytest.fixture
def work(tmp_path: Path, files: Path) -> Path:
    """The test's directory: an output parent holding a file, and output directories of each awkward kind."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("an earlier file that must survive\n")
    shutil.copytree(files / "other", tmp_path / "other")
    (tmp_path / "cells-dir" / "cells.jsonl").mkdir(parents=True)
    (tmp_path / "cells-binary").mkdir()
    (tmp_path / "cells-binary" / "cells.jsonl").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "read-only").mkdir(mode=0o555)
    return tmp_path


def resolve(value, files: Path, work: Path):
    if isinstance(value, str):
        return value.format(files=files, work=work)
    if isinstance(value, dict):
        return {resolve(key, files, work): resolve(item, files, work) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, files, work) for item in value]
    return value


def config_file(change: dict, files: Path, work: Path) -> Path:
    """The base config with ``change`` applied, as a YAML file in ``work``; or the file the change names."""
    change = resolve(change, files, work)
    if "CONFIG" in change:
        return Path(change["CONFIG"])
    config = base_config(files, work)
    for key, value in change.items():
        if key == "RAW":
            continue
        *parents, last = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    path = work / "config.yaml"
    if "RAW" in change:  # the checkpoints written by hand: YAML that yaml.safe_dump cannot write
        del config["checkpoints"]
        path.write_text(change["RAW"] + yaml.safe_dump(config))
    else:
        path.write_text(yaml.safe_dump(config))
    return path


def snapshot(*directories: Path) -> dict[str, bytes | None]:
    """Every entry under ``directories``: a file's bytes, None for a directory."""
    entries = {}
    for directory in directories:
        for path in directory.rglob("*"):
            entries[str(path)] = path.read_bytes() if path.is_file() else None
    return entries


@pytest.mark.parametrize(("change", "code", "fragment"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_is_refused_in_one_line_before_any_work(files, work, capsys, change, code, fragment):
    if "{work}/read-only" in str(change.get("output_dir")) and os.geteuid() == 0:
        pytest.skip("root writes into a read-only directory")
    config = config_file(change, files, work)
    before = snapshot(files, work)
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--config", str(config)])
    error = capsys.readouterr().err
    assert exit_info.value.code == code, error[-2000:]
    assert fragment in error, error[-2000:]
    assert "Traceback" not in error
    lines = [line for line in error.splitlines() if line.strip()]
    assert len(lines) == 1, error[-2000:]
    assert snapshot(files, work) == before
    assert not (files / "code-ran").exists()


def test_the_base_config_runs_and_writes_its_report(files, work, capsys):
    """The rows' starting point is valid: without a change it evaluates and writes the report."""
    main(["evaluate", "--config", str(config_file({}, files, work))])
    output = work / "out" / "eval"
    assert {path.name for path in output.iterdir()} >= {"cells.jsonl", "results.csv", "results.md", "results.png"}
    assert "| a |" in capsys.readouterr().out


def test_the_table_has_a_row_per_case_and_no_duplicates():
    assert len(ROWS) >= 40
    assert len({row[0] for row in ROWS}) == len(ROWS)
    assert len({repr(row[1]) for row in ROWS}) == len(ROWS)


def test_the_report_of_another_matrix_is_replaced_only_when_told_and_its_values_are_kept(files, work, capsys):
    """``existing_results: overwrite`` replaces the other matrix's report; cells.jsonl keeps its values."""
    other = work / "other"
    cells_before = (other / "cells.jsonl").read_text()
    change = {"output_dir": str(other), "protocols": ["knn"], "existing_results": "overwrite"}
    main(["evaluate", "--config", str(config_file(change, files, work))])
    assert "| a |" in (other / "results.md").read_text() and "| b |" not in (other / "results.md").read_text()
    assert (other / "cells.jsonl").read_text().startswith(cells_before)
    assert len((other / "cells.jsonl").read_text().splitlines()) == len(cells_before.splitlines()) + 1
