"""The evaluation matrix command: its outputs, W&B, bad checkpoints, and DDP against one process."""

import csv
import json
import subprocess
import sys

import pytest
import torch

from downstream.transferability import SCORES
from selfsup.cli import main as selfsup
from selfsup.data import DigitsDataModule
from tests.helpers import REPO, random_digits_backbone

DIGITS_FORMAT = dict(image_size=16, mean=DigitsDataModule.mean, std=DigitsDataModule.std)


def evaluate(arguments: list[str]) -> None:
    """``selfsup evaluate ARGUMENTS`` in this process."""
    selfsup(["evaluate", *arguments])


def matrix_args(tmp_path, *extra: str) -> list[str]:
    checkpoints = (
        f"{{a: {random_digits_backbone(tmp_path / 'a.pt', 1)}, b: {random_digits_backbone(tmp_path / 'b.pt', 2)}}}"
    )
    return [
        "--checkpoints",
        checkpoints,
        "--labels_per_class",
        "10",
        "--linear.epochs",
        "2",
        "--linear.batch_size",
        "50",
        "--linear.lr",
        "0.5",
        "--linear.standardize",
        "true",
        "--linear.augment",
        "false",
        "--hardware.accelerator",
        "cpu",
        *extra,
    ]


def read_results(path) -> dict[tuple[str, str, str, int], float]:
    with open(path) as stream:
        return {
            (r["checkpoint"], r["dataset"], r["protocol"], int(r["seed"])): float(r["value"])
            for r in csv.DictReader(stream)
        }


@pytest.mark.slow
def test_matrix_writes_table_csv_plot_and_a_wandb_table(tmp_path, capsys):
    output = tmp_path / "eval"
    evaluate(
        matrix_args(
            tmp_path,
            "--datasets",
            "{digits: null, digits_transfer: null}",
            "--protocols",
            "[knn, linear, logme, layerwise, finetune]",
            "--linear.cache_features",
            "true",
            "--finetune.epochs",
            "1",
            "--finetune.batch_size",
            "50",
            "--output_dir",
            str(output),
            "--wandb_project",
            "selfsup-tests",
        )
    )
    results = read_results(output / "results.csv")
    checkpoints = {"a", "b", "random init (small_conv, 16px)"}
    protocols = {"knn", "linear", "logme", "layer1", "layer2", "layer3", "layer4", "finetune"}
    datasets = ("digits", "digits_transfer")
    assert set(results) == {(c, d, p, 0) for c in checkpoints for d in datasets for p in protocols}
    assert results[("a", "digits", "layer4", 0)] == results[("a", "digits", "linear", 0)]
    table = (output / "results.md").read_text()
    assert "| a |" in table and "**digits_transfer**" in table and "Kendall's tau" in table
    assert table.strip() in capsys.readouterr().out
    assert (output / "results.png").stat().st_size > 10_000
    assert list((output / "wandb").glob("offline-run-*/run-*.wandb"))


@pytest.mark.parametrize("config", sorted((REPO / "configs" / "downstream").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_downstream_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate(["--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    assert "protocols:" in capsys.readouterr().out


def test_a_checkpoint_of_another_architecture_is_one_message_listing_keys(tmp_path, capsys):
    payload = torch.load(random_digits_backbone(tmp_path / "small.pt", 0), weights_only=True)
    payload["backbone"], payload["backbone_kwargs"] = "resnet18", {}
    torch.save(payload, tmp_path / "mislabelled.pt")
    with pytest.raises(SystemExit) as exit_info:
        evaluate(["--checkpoints", f"{{x: {tmp_path / 'mislabelled.pt'}}}", "--datasets", "{digits: null}"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "does not fit backbone 'resnet18'" in error and "missing keys [" in error and "unexpected keys [" in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--label_fraction", "1.5"], "label_fraction must lie in (0, 1]"),
        (["--labels_per_class", "0"], "label_fraction must lie in (0, 1]"),
        (["--seeds", "[0, 0]"], "seeds must list at least one seed, each once"),
        (["--seeds", "[]"], "seeds must list at least one seed, each once"),
    ],
)
def test_bad_labels_or_seeds_stop_before_any_work(tmp_path, capsys, bad, message):
    with pytest.raises(SystemExit) as exit_info:
        evaluate(["--checkpoints", "{x: /nonexistent.pt}", "--datasets", "{digits: null}", *bad])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_ddp_evaluation_equals_one_process(tmp_path):
    """Extraction, kNN, LogME, the transferability scores and the uncached probe, on 1 and on 2 CPU processes.

    The probe's per-example test losses (Taskonomy's affinity reads them) are gathered from both ranks
    in dataset order; the seconds each score took are the only values that may differ.
    """
    outputs = {}
    for devices, strategy in ((1, "auto"), (2, "ddp")):
        outputs[devices] = tmp_path / f"devices{devices}"
        args = matrix_args(
            tmp_path,
            "--datasets",
            "{digits: null}",
            "--protocols",
            "[knn, linear, logme, transferability]",
            "--linear.cache_features",
            "false",
            "--hardware.devices",
            str(devices),
            "--hardware.strategy",
            strategy,
            "--output_dir",
            str(outputs[devices]),
        )
        result = subprocess.run(
            [sys.executable, "-m", "selfsup", "evaluate", *args], cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-3000:]
    single, distributed = read_results(outputs[1] / "results.csv"), read_results(outputs[2] / "results.csv")
    assert single.keys() == distributed.keys()
    for key, value in single.items():
        if not key[2].startswith("seconds/"):
            assert distributed[key] == pytest.approx(value, abs=1e-6), key
    losses = {devices: probe_losses(outputs[devices]) for devices in (1, 2)}
    assert losses[1].keys() == losses[2].keys() and len(losses[1]) == 3
    for checkpoint, single_losses in losses[1].items():
        assert len(single_losses) == 360
        assert losses[2][checkpoint] == pytest.approx(single_losses, abs=1e-4), checkpoint


def probe_losses(output) -> dict[str, list[float]]:
    lines = [json.loads(line) for line in (output / "cells.jsonl").read_text().splitlines()]
    return {line["checkpoint"]: line["losses"] for line in lines if line["protocol"] == "linear"}


def test_a_missing_second_dataset_is_refused_before_the_first_cell(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate(
            matrix_args(
                tmp_path,
                "--datasets",
                f"{{digits: null, cifar10: {tmp_path / 'nowhere'}}}",
                "--output_dir",
                str(tmp_path / "eval"),
            )
        )
    assert exit_info.value.code == 2
    assert "expected the directory" in capsys.readouterr().err
    assert not (tmp_path / "eval" / "cells.jsonl").exists()


def test_an_output_directory_that_cannot_be_written_is_refused_before_the_first_cell(tmp_path, capsys):
    blocker = tmp_path / "results-are-a-file"
    blocker.write_text("not a directory\n")
    with pytest.raises(SystemExit) as exit_info:
        evaluate(matrix_args(tmp_path, "--datasets", "{digits: null}", "--output_dir", str(blocker / "eval")))
    assert exit_info.value.code == 2
    assert "cannot write the results to output_dir=" in capsys.readouterr().err
    assert blocker.read_text() == "not a directory\n"


def _knn_only(tmp_path, checkpoints: dict) -> list[str]:
    return [
        "--checkpoints", json.dumps(checkpoints), "--datasets", "{digits: null}", "--protocols", "[knn]",
        "--labels_per_class", "10", "--random_init_baseline", "false",
        "--output_dir", str(tmp_path / "eval"), "--hardware.accelerator", "cpu",
    ]  # fmt: skip


def test_a_foreign_file_evaluates_like_this_projects_export_of_the_same_network(tmp_path, capsys):
    """A DataParallel state dict plus its entry gives the values of the export it was made from."""
    export = random_digits_backbone(tmp_path / "a.pt", 1)
    payload = torch.load(export, weights_only=True)
    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": {f"module.{key}": value for key, value in payload["state_dict"].items()}}, foreign)
    entry = {"path": str(foreign), "backbone": "small_conv", "backbone_kwargs": payload["backbone_kwargs"]}
    evaluate(_knn_only(tmp_path, {"ours": export, "theirs": entry | DIGITS_FORMAT}))
    err = capsys.readouterr().err
    assert "checkpoints.theirs: took" in err and "'state_dict.module.'" in err
    rows = {row["checkpoint"]: row for row in csv.DictReader(open(tmp_path / "eval" / "results.csv"))}
    assert rows["ours"]["value"] == rows["theirs"]["value"]


def test_a_foreign_file_without_a_format_is_announced_at_its_family_default(tmp_path, capsys):
    export = random_digits_backbone(tmp_path / "a.pt", 1)
    payload = torch.load(export, weights_only=True)
    torch.save(payload["state_dict"], tmp_path / "bare.pt")
    entry = {"path": str(tmp_path / "bare.pt"), "backbone": "small_conv", "backbone_kwargs": payload["backbone_kwargs"]}
    evaluate(_knn_only(tmp_path, {"bare": entry | {"image_size": 16}}))
    err = capsys.readouterr().err
    assert "checkpoints.bare records no mean, std: evaluating it at the small_conv default (mean (0.5, 0.5, 0.5)" in err


def test_the_transferability_protocol_scores_every_checkpoint_and_layer_and_ranks_them_against_training(tmp_path):
    output = tmp_path / "eval"
    evaluate(
        matrix_args(
            tmp_path,
            "--datasets",
            "{digits: null}",
            "--protocols",
            "[logistic, logme, transferability]",
            "--transferability.layers",
            "true",
            "--transferability.bootstrap",
            "200",
            "--output_dir",
            str(output),
        )
    )
    values = read_results(output / "results.csv")
    checkpoints = {checkpoint for checkpoint, *_ in values}
    assert len(checkpoints) == 3  # a, b and the random baseline
    for checkpoint in checkpoints:
        scores = {protocol: value for (name, _, protocol, _), value in values.items() if name == checkpoint}
        assert {f"transferability/{score}" for score in SCORES} <= scores.keys()
        assert {f"seconds/{score}" for score in SCORES} <= scores.keys()
        assert {f"transferability/{score}@layer{stage}" for score in SCORES for stage in (1, 2, 3)} <= scores.keys()
        assert scores["transferability/logme"] == pytest.approx(scores["logme"], rel=1e-9)
        assert 0 <= scores["transferability/knn_loo"] <= 1
        assert all(scores[f"seconds/{score}"] >= 0 for score in SCORES)
    table = (output / "results.md").read_text()
    assert "| checkpoint | " + " | ".join(SCORES) + " | best layer by knn_loo |" in table
    layers = {stage: values[("a", "digits", f"transferability/knn_loo@layer{stage}", 0)] for stage in (1, 2, 3)}
    layers[4] = values[("a", "digits", "transferability/knn_loo", 0)]
    score_row = [line for line in table.splitlines() if line.startswith("| a |")][1]  # after the accuracies' row
    assert score_row.endswith(f" | {max(layers, key=layers.get)} |")
    assert "| score | tau vs logistic | weighted tau vs logistic | seconds per cell | failed cells |" in table
    by_knn = sorted(checkpoints, key=lambda c: -values[(c, "digits", "transferability/knn_loo", 0)])
    ranking = [line for line in table.splitlines() if line[:3] in ("1. ", "2. ", "3. ")]
    assert [line.split(" (knn_loo ")[0][3:] for line in ranking] == by_knn
    assert "Which score to trust here: against logistic," in table
    before_costs = table.split("**Cost of each row**")[0]  # the report's last section, after the affinity table
    affinity = [line for line in before_costs.splitlines() if line.startswith("| ") and "Taskonomy" not in line]
    affinity = affinity[affinity.index("| checkpoint | logistic |") + 1 :]
    assert sum(float(line.split("|")[2]) for line in affinity) == pytest.approx(1.0, abs=2e-3)
    logistic_lines = [
        json.loads(line) for line in (output / "cells.jsonl").read_text().splitlines() if '"logistic"' in line
    ]
    assert {len(line["losses"]) for line in logistic_lines} == {360}  # the digits test split
    assert (output / "transferability.png").stat().st_size > 10_000
