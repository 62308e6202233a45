"""Self-taught learning end to end: ``selfsup dictionary`` writes a dictionary the evaluation matrix takes as a row."""

import csv

import pytest
import torch

from selfsup.checkpoints import read_checkpoint
from selfsup.classical.dictionary import dictionary_from
from selfsup.cli import main as selfsup
from tests.helpers import random_digits_backbone

TINY = ["--data", "selfsup.data.DigitsDataModule", "--n_atoms", "8", "--max_images", "60", "--epochs", "3"]


@pytest.fixture(scope="module")
def dictionary_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("dictionary")
    selfsup(["dictionary", *TINY, "--output_dir", str(output)])
    return output


def test_dictionary_command_writes_the_file_and_the_picture(dictionary_run, capsys):
    encoder, input_format = dictionary_from(read_checkpoint(dictionary_run / "dictionary.pt"), "dictionary.pt")
    assert encoder.n_atoms == 8 and encoder.settings()["image_size"] == 16 == input_format["image_size"]
    assert torch.allclose(encoder.atoms.norm(dim=1), torch.ones(8, dtype=torch.float64), atol=1e-6)
    provenance = read_checkpoint(dictionary_run / "dictionary.pt")["provenance"]
    assert provenance["images"] == 60 and 0 <= provenance["held_out_relative_error"] < 1
    assert (dictionary_run / "atoms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_seed_learns_the_same_dictionary(dictionary_run, tmp_path):
    selfsup(["dictionary", *TINY, "--output_dir", str(tmp_path)])
    first, again = (read_checkpoint(path / "dictionary.pt")["atoms"] for path in (dictionary_run, tmp_path))
    assert torch.equal(first, again)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--n_atoms", "0"], "n_atoms must be >= 1"),
        (["--sparsity", "nan"], "sparsity must be a number, got nan"),
        (["--sparsity", "-1"], "sparsity must be a finite number > 0"),
        (["--patch_size", "20"], "patch_size must be at most the image size 16"),
        (["--pool_grid", "9"], "pool_grid must be at most the 6 patch rows"),
        (["--max_images", "0"], "max_images must be null or >= 1"),
        (["--epochs", "0"], "epochs must be an integer >= 1"),
        (["--learner", "sgd"], "learner"),
        (["--n_atoms", "x"], "n_atoms"),
        (["--n_atoms", "600", "--max_images", "20"], "cannot determine 600 atoms"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(arguments, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        selfsup(["dictionary", *TINY, "--output_dir", str(tmp_path / "out"), *arguments])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("selfsup dictionary: error:") and message in error
    assert not (tmp_path / "out" / "dictionary.pt").exists()


def test_output_dir_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(SystemExit):
        selfsup(["dictionary", *TINY, "--output_dir", str(tmp_path / "file")])
    assert "is a file" in capsys.readouterr().err and (tmp_path / "file").read_text() == "keep me"


@pytest.mark.slow
def test_matrix_takes_a_dictionary_as_a_row_with_its_random_twin(dictionary_run, tmp_path, capsys):
    output = tmp_path / "eval"
    checkpoints = (
        f"{{dictionary: {dictionary_run / 'dictionary.pt'}, net: {random_digits_backbone(tmp_path / 'n.pt')}}}"
    )
    selfsup(
        [
            "evaluate",
            "--checkpoints",
            checkpoints,
            "--datasets",
            "{digits: null}",
            "--protocols",
            "[knn, logme, transferability, finetune]",
            "--labels_per_class",
            "10",
            "--finetune.epochs",
            "1",
            "--finetune.batch_size",
            "50",
            "--raw_pixels_baseline",
            "true",
            "--output_dir",
            str(output),
            "--hardware.accelerator",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    with open(output / "results.csv") as stream:
        values = {(row["checkpoint"], row["protocol"]): float(row["value"]) for row in csv.DictReader(stream)}
    twin = "random init (dictionary, 8 atoms of 6x6, 16px)"
    assert {name for name, _ in values} == {"dictionary", "net", twin, "random init (small_conv, 16px)", "raw pixels"}
    for row in ("dictionary", twin):
        assert 10 < values[(row, "knn")] <= 100 and (row, "finetune") not in values
        scores = [value for (name, protocol), value in values.items() if name == row and protocol not in ("knn",)]
        assert len(scores) > 10 and all(value == value for value in scores)  # LogME and every score: not NaN
        assert f"{row}: finetune does not apply to it" in err
    assert ("net", "finetune") in values
    report = (output / "results.md").read_text()
    assert "**Cost of each row**" in report and "| dictionary | 864 | " in report  # 8 atoms of 3 x 6 x 6


def test_a_damaged_dictionary_in_the_matrix_is_one_line(dictionary_run, tmp_path, capsys):
    payload = read_checkpoint(dictionary_run / "dictionary.pt")
    payload["atoms"] = payload["atoms"] * 3
    torch.save(payload, tmp_path / "damaged.pt")
    with pytest.raises(SystemExit) as stopped:
        selfsup(
            ["evaluate", "--checkpoints", f"{{d: {tmp_path / 'damaged.pt'}}}", "--datasets", "{digits: null}"]
            + ["--output_dir", str(tmp_path / "e")]
        )
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "checkpoints.d:" in error and "over the bound 1" in error
