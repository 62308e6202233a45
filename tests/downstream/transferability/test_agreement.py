"""Kendall's tau of a score against accuracy, and its two-level bootstrap interval."""

import math

import numpy as np
import pytest
from scipy.stats import kendalltau, weightedtau

from downstream.transferability.agreement import agreement, tau_b, weighted_tau
from selfsup.errors import ConfigurationError


def test_a_score_in_the_order_of_the_accuracies_has_tau_one_and_the_reverse_minus_one():
    accuracies = [[10.0], [20.0], [30.0], [40.0]]
    same = agreement([[1.0], [2.0], [3.0], [4.0]], accuracies, resamples=200)
    reverse = agreement([[4.0], [3.0], [2.0], [1.0]], accuracies, resamples=200)
    assert (same.tau, same.weighted_tau) == pytest.approx((1.0, 1.0), abs=1e-12)
    assert (reverse.tau, reverse.weighted_tau) == pytest.approx((-1.0, -1.0), abs=1e-12)
    assert same.tau_interval == pytest.approx((1.0, 1.0), abs=1e-12) and same.interval_excludes_zero()


def test_tau_is_computed_on_the_means_over_seeds():
    """Two seeds: means (1.5, 1, 3) and (10, 25, 30): one discordant pair of three, tau = 1/3."""
    scores = [[1.0, 2.0], [0.5, 1.5], [3.0, 3.0]]
    accuracies = [[10.0, 10.0], [20.0, 30.0], [30.0, 30.0]]
    result = agreement(scores, accuracies, resamples=0)
    assert result.tau == pytest.approx(kendalltau([1.5, 1.0, 3.0], [10.0, 25.0, 30.0]).statistic)
    assert result.tau == pytest.approx(1 / 3)
    assert math.isnan(result.tau_interval[0])  # no resamples, no interval


def test_the_interval_holds_tau_and_widens_when_the_seeds_disagree():
    rng = np.random.default_rng(0)
    truth = np.arange(8.0)
    steady = [[t + 0.01 * rng.normal() for _ in range(3)] for t in truth]
    noisy = [[t + 4.0 * rng.normal() for _ in range(3)] for t in truth]
    accuracies = [[10 * t] * 3 for t in truth]
    tight, loose = agreement(steady, accuracies), agreement(noisy, accuracies)
    for result in (tight, loose):
        assert result.tau_interval[0] - 1e-12 <= result.tau <= result.tau_interval[1] + 1e-12
    assert np.ptp(tight.tau_interval) < np.ptp(loose.tau_interval)
    assert agreement(noisy, accuracies).tau_interval == loose.tau_interval  # seeded: the same interval again


def test_nan_scores_drop_their_seed_or_checkpoint_and_fewer_than_three_give_no_tau():
    nan = float("nan")
    result = agreement([[1.0], [nan], [2.0], [3.0]], [[1.0], [9.0], [2.0], [3.0]], resamples=0)
    assert (result.tau, result.checkpoints) == (1.0, 3)
    too_few = agreement([[1.0], [nan], [2.0]], [[1.0], [2.0], [3.0]], resamples=10)
    assert math.isnan(too_few.tau) and too_few.checkpoints == 2


def test_a_constant_score_has_no_tau():
    assert math.isnan(agreement([[1.0]] * 4, [[1.0], [2.0], [3.0], [4.0]], resamples=10).tau)


@pytest.mark.parametrize(
    "scores, accuracies, resamples, message",
    [
        ([[1.0]], [[1.0], [2.0]], 10, "1 checkpoints of scores but 2"),
        ([[1.0, 2.0]], [[1.0]], 10, "2 seeds of scores but 1"),
        ([[1.0]], [[1.0]], -1, "resamples must be an integer >= 0"),
        ([[1.0]], [[1.0]], 2.5, "resamples must be an integer >= 0"),
        ([[1.0]], [[1.0]], True, "resamples must be an integer >= 0"),
    ],
)
def test_bad_input_is_refused(scores, accuracies, resamples, message):
    with pytest.raises(ConfigurationError, match=message):
        agreement(scores, accuracies, resamples=resamples)


def test_the_vectorised_taus_equal_scipys_with_and_without_ties():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 9)), rng.normal(size=(200, 9))
    x[100:], y[100:] = np.round(x[100:]), np.round(2 * y[100:])  # many ties
    taus, weighted = tau_b(x, y), weighted_tau(x, y)
    for row in range(200):
        assert taus[row] == pytest.approx(kendalltau(x[row], y[row]).statistic, abs=1e-12)
        assert weighted[row] == pytest.approx(weightedtau(x[row], y[row]).statistic, abs=1e-12)
    assert math.isnan(tau_b(np.ones((1, 4)), y[:1, :4])[0])
