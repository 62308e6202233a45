"""Taskonomy affinity against win rates and AHP eigenvectors worked out by hand."""

import math

import numpy as np
import pytest
import torch

from downstream.transferability.affinity import CLIP, affinity_ranking, tournament_ratios, win_rates
from selfsup.errors import ConfigurationError

#: 3 sources x 4 test examples. Source 0 beats 1 on examples 0 and 1, ties on 2, loses on 3: 2.5 / 4.
#: Source 0 beats 2 on examples 0 and 2: 2 / 4. Source 1 beats 2 on examples 0, 2 and 3: 3 / 4.
LOSSES = np.array([[1.0, 1.0, 1.0, 5.0], [2.0, 2.0, 1.0, 0.0], [3.0, 0.0, 4.0, 4.0]])
WINS = np.array([[0.5, 0.625, 0.5], [0.375, 0.5, 0.75], [0.5, 0.25, 0.5]])


def test_win_rates_of_three_sources_on_four_examples_by_hand():
    np.testing.assert_allclose(win_rates(LOSSES), WINS, rtol=0, atol=1e-15)


def test_win_rates_and_their_transpose_sum_to_one_with_ties_counting_half():
    rng = np.random.default_rng(0)
    losses = rng.integers(0, 3, size=(5, 40)).astype(float)  # many ties
    wins = win_rates(losses)
    np.testing.assert_allclose(wins + wins.T, np.ones((5, 5)), rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.diag(wins), 0.5, rtol=0, atol=0)


def test_affinity_of_three_sources_is_the_row_geometric_mean_of_the_ratios():
    """For a 3 x 3 reciprocal matrix the principal eigenvector is the vector of row geometric means.

    W' = [[1, 5/3, 1], [3/5, 1, 3], [1, 1/3, 1]]; its largest eigenvalue is 1 + r^(1/3) + r^(-1/3)
    with r = W'01 W'12 / W'02 = 5.
    """
    ratios = np.array([[1.0, 5 / 3, 1.0], [3 / 5, 1.0, 3.0], [1.0, 1 / 3, 1.0]])
    np.testing.assert_allclose(tournament_ratios(LOSSES), ratios, rtol=1e-14)
    geometric_means = np.array([(5 / 3) ** (1 / 3), (9 / 5) ** (1 / 3), (1 / 3) ** (1 / 3)])
    expected = geometric_means / geometric_means.sum()
    affinity = affinity_ranking(LOSSES)
    np.testing.assert_allclose(affinity, expected, rtol=1e-12)
    eigenvalue = 1 + 5 ** (1 / 3) + 5 ** (-1 / 3)
    np.testing.assert_allclose(ratios @ affinity, eigenvalue * affinity, rtol=1e-12)
    assert affinity.sum() == pytest.approx(1.0, abs=1e-15)


def test_a_source_that_never_wins_is_clipped_to_the_papers_bound():
    """Source 0 loses every example: W = [[1/2, 0], [1, 1/2]] -> clipped to 0.001 and 0.999, W'10 = 999."""
    losses = np.array([[2.0, 3.0, 4.0], [1.0, 1.0, 1.0]])
    ratios = tournament_ratios(losses)
    assert ratios[1, 0] == pytest.approx((1 - CLIP) / CLIP, rel=1e-12)
    assert ratios[0, 1] == pytest.approx(CLIP / (1 - CLIP), rel=1e-12)
    # For K = 2 the eigenvector of [[1, 1/r], [r, 1]] is (1, r) / (1 + r).
    np.testing.assert_allclose(affinity_ranking(losses), [CLIP, 1 - CLIP], rtol=1e-10)
    np.testing.assert_allclose(affinity_ranking(losses, clip=0.1), [0.1, 0.9], rtol=1e-10)


def test_a_source_that_wins_on_every_example_gets_the_largest_affinity():
    rng = np.random.default_rng(1)
    losses = rng.uniform(1.0, 2.0, size=(6, 50))
    losses[3] = losses.min(axis=0) - 0.1
    affinity = affinity_ranking(losses)
    assert np.argmax(affinity) == 3
    assert (affinity > 0).all()


def test_permuting_the_sources_permutes_the_affinities():
    rng = np.random.default_rng(2)
    losses = rng.normal(size=(5, 30)) + np.arange(5)[:, None] * 0.2
    order = rng.permutation(5)
    np.testing.assert_allclose(affinity_ranking(losses[order]), affinity_ranking(losses)[order], rtol=1e-10)
    np.testing.assert_allclose(win_rates(losses[order]), win_rates(losses)[np.ix_(order, order)], rtol=0, atol=0)


def test_one_source_has_affinity_one():
    np.testing.assert_array_equal(affinity_ranking(np.array([[0.3, 0.1, 0.7]])), [1.0])


def test_two_sources_with_swapped_halves_tie():
    first, second = np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.6, 0.9])
    losses = np.stack([np.concatenate([first, second]), np.concatenate([second, first])])
    np.testing.assert_allclose(affinity_ranking(losses), [0.5, 0.5], rtol=1e-12)


def test_affinity_depends_on_the_order_of_the_losses_on_each_example_only():
    rng = np.random.default_rng(3)
    losses = rng.uniform(0.1, 1.0, size=(4, 25))
    np.testing.assert_allclose(affinity_ranking(np.log(losses) * 3 + 7), affinity_ranking(losses), rtol=1e-12)


def test_a_dict_a_tensor_and_an_array_agree_and_are_left_unchanged():
    names = ["depth", "edges", "normals"]
    dictionary = {name: LOSSES[i].copy() for i, name in enumerate(names)}
    tensor = torch.from_numpy(LOSSES.copy()).float()
    array = LOSSES.copy()
    expected = affinity_ranking(LOSSES)
    np.testing.assert_allclose(affinity_ranking(dictionary), expected, rtol=1e-6)
    np.testing.assert_allclose(affinity_ranking(tensor), expected, rtol=1e-6)
    np.testing.assert_allclose(win_rates(dictionary), WINS, rtol=0, atol=1e-15)
    assert affinity_ranking(array).dtype == np.float64
    np.testing.assert_array_equal(array, LOSSES)
    assert torch.equal(tensor, torch.from_numpy(LOSSES).float())
    for i, name in enumerate(names):
        np.testing.assert_array_equal(dictionary[name], LOSSES[i])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_losses_are_refused(bad):
    losses = LOSSES.copy()
    losses[1, 2] = bad
    with pytest.raises(ConfigurationError, match="losses must be finite"):
        affinity_ranking(losses)
    with pytest.raises(ConfigurationError, match="losses must be finite"):
        win_rates({"a": losses[0], "b": losses[1]})


def test_sources_with_different_numbers_of_examples_are_refused():
    with pytest.raises(ConfigurationError, match="same M test examples.*'a': 3, 'b': 2"):
        affinity_ranking({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0]})
    with pytest.raises(ConfigurationError, match="rows of one length"):
        affinity_ranking([[1.0, 2.0, 3.0], [1.0, 2.0]])


@pytest.mark.parametrize("losses", [np.zeros(4), np.zeros((2, 0)), np.zeros((0, 3)), np.zeros((2, 3, 1)), {}])
def test_losses_of_the_wrong_shape_are_refused(losses):
    with pytest.raises(ConfigurationError, match="losses"):
        win_rates(losses)


@pytest.mark.parametrize("clip", [0, -0.1, 0.5, 0.7, math.nan, math.inf, True, "0.001"])
def test_bad_clip_values_are_refused(clip):
    with pytest.raises(ConfigurationError, match=r"affinity_ranking: clip must be a number in \(0, 0.5\), got"):
        affinity_ranking(LOSSES, clip=clip)
