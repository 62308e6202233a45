"""``selfsup similarity``: Task2Vec distance, EMD and domain similarity between datasets, from one probe."""

import csv

import pytest

from downstream.similarity import dataset_similarity
from selfsup.cli import main as selfsup
from tests.helpers import random_digits_backbone


@pytest.fixture(scope="module")
def matrices(tmp_path_factory):
    output = tmp_path_factory.mktemp("similarity")
    probe = random_digits_backbone(output / "probe.pt", 1)
    datasets = {"digits": None, "digits_transfer": None}
    return dataset_similarity(probe, datasets, str(output / "out"), max_images=40), output / "out"


def test_a_dataset_is_at_distance_zero_from_itself_and_the_measures_are_symmetric(matrices):
    values, _ = matrices
    distance, transport, similarity = (
        values[m] for m in ("task2vec_distance", "earth_movers_distance", "domain_similarity")
    )
    assert distance[0, 0] == distance[1, 1] == 0 and transport[0, 0] == transport[1, 1] == 0
    assert similarity[0, 0] == similarity[1, 1] == 1
    assert distance[0, 1] == pytest.approx(distance[1, 0], abs=1e-12) and 0 < distance[0, 1] <= 1
    assert transport[0, 1] == pytest.approx(transport[1, 0], rel=1e-9) and transport[0, 1] > 0
    assert 0 < similarity[0, 1] < 1


def test_the_report_has_every_pair_and_measure(matrices):
    values, output = matrices
    with open(output / "similarity.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 3 * 4
    assert {row["measure"] for row in rows} == set(values)
    table = (output / "similarity.md").read_text()
    assert "**task2vec_distance** (0 = the same task)" in table and "| digits_transfer |" in table
    assert (output / "similarity.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--datasets", "{digits: null}"], "datasets must be a mapping of at least 2 datasets"),
        (["--gamma", "0"], "gamma must be a finite number > 0"),
        (["--gamma", "nan"], "gamma must be"),
        (["--gamma", "-1"], "gamma must be a finite number > 0"),
        (["--max_images", "1"], "max_images must be an integer >= 2"),
        (["--datasets", "{digits: null, nowhere: null}"], "nowhere"),
        (["--max_images", "many"], "max_images"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(tmp_path, capsys, extra, message):
    probe = random_digits_backbone(tmp_path / "probe.pt", 1)
    arguments = [
        "--probe",
        probe,
        "--datasets",
        "{digits: null, digits_transfer: null}",
        "--output_dir",
        str(tmp_path / "o"),
    ]
    with pytest.raises(SystemExit) as exit_info:
        selfsup(["similarity", *arguments, *extra])
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and message in error and len(error.splitlines()) == 1, error
    assert not (tmp_path / "o").exists()


def test_a_missing_probe_names_its_key(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        selfsup(
            ["similarity", "--probe", str(tmp_path / "no.pt"), "--datasets", "{digits: null, digits_transfer: null}"]
        )
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "probe: " in error and "checkpoints.probe" not in error
