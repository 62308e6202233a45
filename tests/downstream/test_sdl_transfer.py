"""``selfsup sdl``: semi-coupled dictionary learning between digits and a rendering of them, at tiny size."""

import csv
import math

import numpy as np
import pytest
from scipy.ndimage import sobel

from downstream.sdl_transfer import METHODS, METRICS, TARGET_DOMAINS, main, paired_digits, sdl_transfer
from selfsup.errors import ConfigurationError

TINY = {"n_atoms": 6, "iterations": 2, "pairs": 40, "labelled": 30, "initial_iterations": 2}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    output = tmp_path_factory.mktemp("sdl")
    return sdl_transfer(str(output), seeds=[0, 1], **TINY), output


def test_every_method_and_reference_has_a_finite_value_per_seed(report):
    results, _ = report
    assert set(results) == set(METHODS)
    present = {method: [m for m in METRICS if all(math.isfinite(v) for v in results[method][m])] for method in METHODS}
    for method in ("SDL", "uncoupled pair", "fully coupled (W = I)", "raw pixels, no transfer"):
        assert present[method] == list(METRICS), method
    assert present["ridge map on pixels"] == ["synthesis_mse", "cross_domain_accuracy"]
    assert present["5-NN map on pixels"] == ["synthesis_mse", "cross_domain_accuracy"]
    assert present["mean source image"] == ["synthesis_mse"]
    for method in METHODS:
        assert all(len(results[method][metric]) == 2 for metric in METRICS)
        for metric in present[method]:
            assert all(0 <= value <= (1 if "accuracy" in metric else 10) for value in results[method][metric])


def test_the_files_hold_the_table_the_rows_and_the_figure(report):
    results, output = report
    table = (output / "sdl.md").read_text()
    for method in METHODS:
        assert f"| {method} |" in table
    assert "mean ± std over seeds [0, 1]" in table and "SDL ran" in table
    assert "target: low-resolution digits" in table and "target_domain=low_resolution" in table
    with open(output / "sdl.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 2 * len(METHODS)
    sdl_seed_1 = next(row for row in rows if row["method"] == "SDL" and row["seed"] == "1")
    assert float(sdl_seed_1["synthesis_mse"]) == results["SDL"]["synthesis_mse"][1]
    assert next(row for row in rows if row["method"] == "mean source image")["in_domain_accuracy"] == ""
    assert (output / "sdl.png").stat().st_size > 20_000


@pytest.mark.parametrize("target_domain", list(TARGET_DOMAINS))
def test_each_target_domain_is_a_deterministic_rendering_in_the_unit_range(target_domain):
    source, target, labels = paired_digits(target_domain)
    again_source, again_target, again_labels = paired_digits(target_domain)
    assert np.array_equal(source, again_source) and np.array_equal(target, again_target)
    assert np.array_equal(labels, again_labels)
    assert source.shape == target.shape == (1797, 64) and labels.shape == (1797,)
    assert source.min() == 0 and source.max() == 1
    assert 0 <= target.min() and target.max() <= 1 and np.isfinite(target).all()
    assert np.array_equal(source, paired_digits()[0])  # the source domain does not depend on the target's
    assert np.abs(target - source).mean() > 0.05


def test_the_low_resolution_target_is_the_2x2_block_means():
    source, target, _ = paired_digits("low_resolution")
    blocks = source.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4))
    pictures = target.reshape(-1, 4, 2, 4, 2)
    assert np.allclose(pictures, blocks[:, :, None, :, None])  # constant over each block, at the block's mean
    assert target.mean() == pytest.approx(source.mean(), abs=1e-12)


def test_the_edge_target_is_each_rotated_digit_s_own_gradient_magnitude():
    source, target, _ = paired_digits("edges")
    for index in (0, 1, 1796):  # computed image by image: no smoothing across neighbouring images
        rotated = np.rot90(source[index].reshape(8, 8))
        magnitude = np.hypot(sobel(rotated, axis=0, mode="constant"), sobel(rotated, axis=1, mode="constant"))
        assert np.allclose(target[index].reshape(8, 8), magnitude / (4 * np.sqrt(2)))


def test_the_threshold_target_is_a_steep_sigmoid_of_the_rotated_digit():
    source, target, _ = paired_digits("threshold")
    rotated = np.rot90(source.reshape(-1, 8, 8), axes=(1, 2)).reshape(-1, 64)
    assert np.allclose(target, 1 / (1 + np.exp(-20 * (rotated - 0.5))))
    assert ((target < 0.01) | (target > 0.99)).mean() > 0.8  # near binary


def test_the_old_target_is_the_source_rotated_blurred_and_inverted():
    source, target, _ = paired_digits("rotated_blurred_inverted")
    assert target.mean() == pytest.approx(1 - source.mean(), abs=1e-9)  # the blur and the rotation keep the mean


def test_another_target_domain_is_named_in_the_report(tmp_path):
    results = sdl_transfer(str(tmp_path), target_domain="edges", seeds=[0], **TINY)
    assert all(math.isfinite(value) for value in results["SDL"]["synthesis_mse"])
    table = (tmp_path / "sdl.md").read_text()
    assert "target: edge maps of rotated digits" in table and "1 seed: 0" in table


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"n_atoms": 0}, "n_atoms must be an integer >= 1, got 0"),
        ({"seeds": []}, "seeds must be a non-empty list of distinct integers"),
        ({"seeds": [0, 0]}, "seeds must be a non-empty list of distinct integers"),
        ({"gamma": -1.0}, "gamma must be a finite number > 0, got -1.0"),
        ({"lambda_mapping": float("nan")}, "lambda_mapping must be a finite number >= 0"),
        ({"iterations": 0}, "iterations must be an integer >= 1, got 0"),
        ({"pairs": 5}, "pairs must be an integer >= 10 (one per digit), got 5"),
        ({"pairs": 1500, "labelled": 290}, "pairs + labelled must leave at least 10 of the 1797 digits for testing"),
        ({"n_atoms": 41}, "n_atoms must be an integer between 1 and the number of pairs (40), got 41"),
        ({"output_dir": " "}, "output_dir must be a directory path"),
        ({"target_domain": "sketch"}, "target_domain must be one of low_resolution, edges, threshold"),
    ],
)
def test_bad_settings_are_configuration_errors(tmp_path, changes, message):
    arguments = {"output_dir": str(tmp_path / "out"), "seeds": [0], **TINY, **changes}
    with pytest.raises(ConfigurationError) as error:
        sdl_transfer(**arguments)
    assert message in str(error.value)
    assert not (tmp_path / "out" / "sdl.md").exists()


def test_the_command_line_reports_a_bad_option_in_one_line(tmp_path):
    with pytest.raises(ConfigurationError, match=r"n_atoms.*selfsup sdl --help lists the options"):
        main(["--output_dir", str(tmp_path), "--n_atoms", "many"])


def test_an_output_dir_that_is_a_file_is_refused_before_any_fitting(tmp_path):
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(ConfigurationError, match="is a file, not a directory"):
        sdl_transfer(str(tmp_path / "file"), seeds=[0], **TINY)
    assert (tmp_path / "file").read_text() == "keep me"
