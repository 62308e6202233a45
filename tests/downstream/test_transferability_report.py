"""The report's transferability section on hand-made results: the trust summary, the affinity, failures."""

import math

import pytest

import downstream.evaluate
from downstream.evaluate import _timed_score
from downstream.recipes import TransferabilityRecipe
from downstream.report import Result
from downstream.transferability_report import transferability_section

CHECKPOINTS = ("a", "b", "c", "d")


def results(knn_loo, logme, accuracy) -> list[Result]:
    rows = []
    for checkpoint, values in zip(CHECKPOINTS, zip(knn_loo, logme, accuracy)):
        for name, value in zip(("transferability/knn_loo", "transferability/logme", "logistic"), values):
            rows.append(Result(checkpoint, "digits", name, 0, value))
    return rows


def summary(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("Which score to trust here"))


def test_without_intervals_the_best_score_is_the_highest_tau_and_no_score_is_called_chance():
    rows = results(knn_loo=[4, 3, 2, 1], logme=[1, 2, 3, 4], accuracy=[10, 20, 30, 40])
    text = summary(transferability_section(rows, {}, TransferabilityRecipe(bootstrap=0)))
    assert "logme ranked the 4 checkpoints best (tau +1.00)" in text
    assert "chance" not in text and "No intervals (transferability.bootstrap: 0)" in text


def test_with_intervals_a_score_ranking_against_training_is_named():
    rows = results(knn_loo=[4, 3, 2, 1], logme=[1, 2, 3, 4], accuracy=[10, 20, 30, 40])
    text = summary(transferability_section(rows, {}, TransferabilityRecipe(bootstrap=200)))
    assert "logme ranked" in text and "Ranked against training: knn_loo." in text


def test_a_score_that_failed_everywhere_is_named_in_the_summary():
    nan = float("nan")
    rows = results(knn_loo=[nan] * 4, logme=[nan] * 4, accuracy=[10, 20, 30, 40])
    text = summary(transferability_section(rows, {}, TransferabilityRecipe(bootstrap=10)))
    assert "no score could be ranked against logistic" in text and "Failed on some checkpoints" in text


def test_a_diverged_classifier_is_left_out_of_the_affinity_not_the_report():
    rows = results(knn_loo=[4, 3, 2, 1], logme=[1, 2, 3, 4], accuracy=[10, 20, 30, 40])
    losses = {(c, "digits", "logistic", 0): [0.1 * i, 0.2, 0.3] for i, c in enumerate(CHECKPOINTS)}
    losses[("d", "digits", "logistic", 0)] = [float("nan"), 0.2, 0.3]
    lines = transferability_section(rows, losses, TransferabilityRecipe(bootstrap=0))
    affinity = [line for line in lines if line.startswith(("| a |", "| b |", "| c |", "| d |"))][-4:]
    assert sum(float(line.split("|")[2]) for line in affinity[:3]) == pytest.approx(1.0, abs=2e-3)
    assert affinity[3].split("|")[2].strip() == ""
    assert "Left out, their test losses not finite: d (logistic)." in lines


def test_a_fit_that_fails_numerically_is_a_nan_said_on_stderr(monkeypatch, capsys):
    def ill_defined(features, labels):
        raise ValueError("Fitting the mixture model failed because some components have ill-defined covariance")

    monkeypatch.setitem(downstream.evaluate.SCORES, "nleep", ill_defined)
    value, seconds = _timed_score("nleep", [[0.0], [1.0]], [0, 1], "a on digits, seed 0")
    assert math.isnan(value) and seconds >= 0
    assert "nleep of a on digits, seed 0 recorded as NaN: Fitting the mixture" in capsys.readouterr().err
