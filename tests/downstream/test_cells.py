"""Cell-by-cell results: a rerun reuses what is in cells.jsonl, a killed run resumes where it stopped."""

import json
import subprocess
import sys

import pytest

import downstream.evaluate
import downstream.extraction
from downstream.cells import CellStore
from downstream.evaluate import evaluate_matrix
from downstream.hardware import Hardware
from downstream.recipes import KNNRecipe
from tests.helpers import REPO, random_digits_backbone


@pytest.fixture
def matrix(tmp_path):
    """``matrix(**overrides)``: kNN and logistic regression of a width-8 net and its random baseline, 2 seeds."""
    path = random_digits_backbone(tmp_path / "a.pt")

    def run(**overrides):
        settings = dict(
            checkpoints={"a": path},
            datasets={"digits": None},
            protocols=["knn", "logistic"],
            labels_per_class=5,
            seeds=[0, 1],
            output_dir=str(tmp_path / "eval"),
            hardware=Hardware(accelerator="cpu"),
        )
        return evaluate_matrix(**{**settings, **overrides})

    return run


def counting(monkeypatch, name: str, fail_on_call: int | None = None) -> list:
    """Count the calls of ``downstream.evaluate.<name>``; raise at call number ``fail_on_call``."""
    calls, original = [], getattr(downstream.evaluate, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        if len(calls) == fail_on_call:
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(downstream.evaluate, name, wrapper)
    return calls


def lines(tmp_path) -> list[dict]:
    """The entries of cells.jsonl that parse."""
    entries = []
    for line in (tmp_path / "eval" / "cells.jsonl").read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def never_extract(*args, **kwargs):
    raise AssertionError("a rerun of the same config extracted features")


def test_a_rerun_of_the_same_config_computes_nothing_and_returns_the_same_results(
    matrix, monkeypatch, capsys, tmp_path
):
    first = matrix()
    assert len(lines(tmp_path)) == 8  # (a, random init) x 2 seeds x (knn, logistic)
    monkeypatch.setattr(downstream.extraction, "extract", never_extract)
    knn_calls, logistic_calls = counting(monkeypatch, "knn_accuracy"), counting(monkeypatch, "logistic_accuracy")
    capsys.readouterr()
    second = matrix(hardware=Hardware(accelerator="cpu", batch_size=64))  # hardware is not in the fingerprint
    assert second == first
    assert knn_calls == [] and logistic_calls == []
    assert "reusing 8 of 8 values" in capsys.readouterr().err
    assert len(lines(tmp_path)) == 8


def test_a_changed_recipe_recomputes_only_its_protocol(matrix, monkeypatch, tmp_path):
    first = matrix()
    knn_calls, logistic_calls = counting(monkeypatch, "knn_accuracy"), counting(monkeypatch, "logistic_accuracy")
    second = matrix(knn=KNNRecipe(k=3))
    assert len(knn_calls) == 4 and logistic_calls == []
    logistic = [(r.checkpoint, r.seed, r.value) for r in first if r.protocol == "logistic"]
    assert [(r.checkpoint, r.seed, r.value) for r in second if r.protocol == "logistic"] == logistic
    assert len(lines(tmp_path)) == 12
    csv_rows = (tmp_path / "eval" / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 8  # rebuilt from this config's values only


def test_a_killed_run_keeps_the_finished_values_and_a_rerun_completes_from_there(matrix, monkeypatch, tmp_path):
    with monkeypatch.context() as patch:
        counting(patch, "logistic_accuracy", fail_on_call=2)  # inside the second cell: a, seed 1
        with pytest.raises(RuntimeError, match="killed"):
            matrix()
    kept = lines(tmp_path)
    assert [(line["checkpoint"], line["seed"], line["protocol"]) for line in kept] == [
        ("a", 0, "knn"),
        ("a", 0, "logistic"),
        ("a", 1, "knn"),
    ]
    with open(tmp_path / "eval" / "cells.jsonl", "a") as stream:
        stream.write('{"fingerprint": "0123')  # a line cut short by the kill
    knn_calls, logistic_calls = counting(monkeypatch, "knn_accuracy"), counting(monkeypatch, "logistic_accuracy")
    resumed = matrix()
    assert len(knn_calls) == 2 and len(logistic_calls) == 3  # a seed 1 (logistic only), random init x 2 seeds
    assert len(lines(tmp_path)) == 8
    assert len((tmp_path / "eval" / "cells.jsonl").read_text().splitlines()) == 9  # the cut line stays, ignored
    monkeypatch.undo()
    assert resumed == matrix(output_dir=str(tmp_path / "uninterrupted"))


def test_lines_that_are_not_cells_are_ignored_not_fatal(tmp_path):
    path = tmp_path / "cells.jsonl"
    lines = [
        "[]",
        '{"fingerprint": 1, "value": 2}',
        '{"fingerprint": "a", "value": "high"}',
        '"text"',
        '{"fingerprint": "b", "value": true}',
        '{"fingerprint": "good", "value": 93.5}',
        '{"fingerprint": "cut',
    ]
    path.write_text("\n".join(lines))
    store = CellStore(path, write=True)
    assert store.values == {"good": 93.5}
    store.add("next", 1.0)
    assert CellStore(path, write=False).values == {"good": 93.5, "next": 1.0}


def test_a_full_disk_ends_with_disk_full_and_keeps_the_values_written_before(tmp_path):
    """The file-size limit stands in for a full disk: the append fails, the earlier lines stay readable."""
    path = tmp_path / "cells.jsonl"
    store = CellStore(path, write=True)
    for index in range(3):
        store.add(f"key{index}", 0.5 + index, checkpoint="a")
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from downstream.cells import CellStore\n"
        "from selfsup.errors import DiskFull\n"
        "path = Path(sys.argv[1])\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 10, resource.RLIM_INFINITY))\n"
        "try:\n"
        "    CellStore(path, write=True).add('key3', 0.25, checkpoint='a', note='x' * 200)\n"
        "except DiskFull as error:\n"
        "    sys.exit(str(error))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=REPO)
    assert "no space left to add a value to" in result.stderr and "the 3 values before it are kept" in result.stderr
    reread = CellStore(path, write=True)
    assert reread.values == {"key0": 0.5, "key1": 1.5, "key2": 2.5}
    reread.add("key3", 0.25, checkpoint="a")
    assert CellStore(path, write=False).values["key3"] == 0.25


def test_a_trained_value_cached_without_its_per_example_losses_is_computed_again(matrix, monkeypatch, tmp_path):
    """Cells written before the losses were recorded: their logistic values come back with losses, kNN is reused."""
    matrix()
    path = tmp_path / "eval" / "cells.jsonl"
    stripped = [{key: value for key, value in entry.items() if key != "losses"} for entry in lines(tmp_path)]
    path.write_text("".join(json.dumps(entry) + "\n" for entry in stripped))
    knn_calls, logistic_calls = counting(monkeypatch, "knn_accuracy"), counting(monkeypatch, "logistic_accuracy")
    matrix()
    assert (len(knn_calls), len(logistic_calls)) == (0, 4)
    store = CellStore(path, write=False)
    assert sum(1 for entry in lines(tmp_path) if entry["protocol"] == "logistic" and "losses" in entry) == 4
    assert all(len(losses) == 360 for losses in store.losses.values())
