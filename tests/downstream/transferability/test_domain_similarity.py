"""Domain similarity against the earth mover's distance in closed form."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from downstream.transferability import domain_similarity as module
from downstream.transferability.domain_similarity import GAMMA, domain_similarity, earth_movers_distance
from selfsup.errors import ConfigurationError

#: Source prototypes 0 (2 of 4 images) and 2 (2 of 4); target prototypes 1 (3 of 4) and 4 (1 of 4).
SOURCE = np.array([[-1.0], [1.0], [2.0], [2.0]])
SOURCE_LABELS = np.array([0, 0, 1, 1])
TARGET = np.array([[0.5], [1.5], [1.0], [4.0]])
TARGET_LABELS = np.array(["a", "a", "a", "b"])


def test_one_dimensional_prototypes_by_hand():
    """The integral of |F_s - F_t|: 1/2 on [0, 1), 1/4 on [1, 2), 1/4 on [2, 4) -> 0.5 + 0.25 + 0.5.

    As a flow: 1/2 from 0 to 1, 1/4 from 2 to 1 and 1/4 from 2 to 4.
    """
    distance = earth_movers_distance(SOURCE, SOURCE_LABELS, TARGET, TARGET_LABELS)
    assert distance == pytest.approx(1.25, rel=1e-12)
    assert wasserstein_distance([0.0, 2.0], [1.0, 4.0], [0.5, 0.5], [0.75, 0.25]) == pytest.approx(1.25, rel=1e-12)
    similarity = domain_similarity(SOURCE, SOURCE_LABELS, TARGET, TARGET_LABELS)
    assert similarity == pytest.approx(math.exp(-GAMMA * 1.25), rel=1e-12)
    assert domain_similarity(SOURCE, SOURCE_LABELS, TARGET, TARGET_LABELS, gamma=2.0) == pytest.approx(
        math.exp(-2.5), rel=1e-12
    )


def test_one_dimensional_prototypes_match_the_distance_between_weighted_cdfs():
    rng = np.random.default_rng(0)
    source, source_labels = rng.normal(size=(300, 1)), rng.integers(0, 7, size=300)
    target, target_labels = rng.normal(1.0, 2.0, size=(200, 1)), rng.integers(0, 5, size=200)

    def prototypes(features, labels):
        classes, sizes = np.unique(labels, return_counts=True)
        return np.array([features[labels == c, 0].mean() for c in classes]), sizes / len(labels)

    (source_points, source_weights), (target_points, target_weights) = (
        prototypes(source, source_labels),
        prototypes(target, target_labels),
    )
    expected = wasserstein_distance(source_points, target_points, source_weights, target_weights)
    assert earth_movers_distance(source, source_labels, target, target_labels) == pytest.approx(expected, rel=1e-10)


def test_identical_domains_are_at_distance_zero_and_similarity_one():
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(60, 8)), rng.integers(0, 6, size=60)
    assert earth_movers_distance(features, labels, features, labels) == pytest.approx(0.0, abs=1e-12)
    assert domain_similarity(features, labels, features[::-1], labels[::-1]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("classes", [1, 5])
def test_translating_the_target_moves_it_by_the_length_of_the_translation(classes):
    """With one class each the prototypes are two points |t| apart; with more, W1(mu, mu + t) = |t| still."""
    rng = np.random.default_rng(2)
    features, labels = rng.normal(size=(50, 4)), rng.integers(0, classes, size=50)
    shift = np.array([3.0, -4.0, 0.0, 12.0])
    distance = earth_movers_distance(features, labels, features + shift, labels)
    assert distance == pytest.approx(13.0, rel=1e-10)


def test_the_distance_is_symmetric_and_the_inputs_are_left_unchanged():
    rng = np.random.default_rng(3)
    source, source_labels = rng.normal(size=(40, 5)), rng.integers(0, 4, size=40)
    target, target_labels = rng.normal(0.5, 1.5, size=(30, 5)), rng.integers(0, 6, size=30)
    copies = [array.copy() for array in (source, source_labels, target, target_labels)]
    forward = earth_movers_distance(source, source_labels, target, target_labels)
    assert forward > 0
    assert earth_movers_distance(target, target_labels, source, source_labels) == pytest.approx(forward, rel=1e-12)
    tensors = [torch.from_numpy(array.copy()) for array in copies]
    assert domain_similarity(*tensors) == pytest.approx(math.exp(-GAMMA * forward), rel=1e-12)
    for array, copy in zip((source, source_labels, target, target_labels), copies):
        np.testing.assert_array_equal(array, copy)
    for tensor, copy in zip(tensors, copies):
        np.testing.assert_array_equal(tensor.numpy(), copy)


def test_one_image_per_label_gives_the_wasserstein_distance_of_unlabelled_samples():
    rng = np.random.default_rng(4)
    source, target = rng.normal(size=(9, 1)), rng.normal(2.0, 1.0, size=(6, 1))
    expected = wasserstein_distance(source[:, 0], target[:, 0])
    assert earth_movers_distance(source, np.arange(9), target, np.arange(6)) == pytest.approx(expected, rel=1e-10)


def test_a_solve_that_stops_before_optimality_raises(monkeypatch):
    monkeypatch.setattr(module, "_MIN_ITERATIONS", 1)
    monkeypatch.setattr(module, "_ITERATIONS_PER_PAIR", 0)
    rng = np.random.default_rng(5)
    source, target = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    with pytest.raises(RuntimeError, match="numItermax reached before optimality"):
        earth_movers_distance(source, np.arange(40), target, np.arange(40))


@pytest.mark.parametrize("gamma", [0, 0.0, -0.01, math.nan, math.inf, True, "0.01", None])
def test_bad_gamma_values_are_refused(gamma):
    with pytest.raises(ConfigurationError, match="domain_similarity: gamma must be a finite number > 0, got"):
        domain_similarity(SOURCE, SOURCE_LABELS, TARGET, TARGET_LABELS, gamma=gamma)


def test_feature_widths_that_differ_are_refused():
    with pytest.raises(ConfigurationError, match="same width D, got 1 and 2"):
        domain_similarity(SOURCE, SOURCE_LABELS, np.hstack([TARGET, TARGET]), TARGET_LABELS)


def test_labels_that_do_not_match_the_features_are_refused():
    with pytest.raises(ConfigurationError, match=r"target_labels must be 1-D with one entry per target sample \(4\)"):
        earth_movers_distance(SOURCE, SOURCE_LABELS, TARGET, TARGET_LABELS[:3])


def test_non_finite_features_are_refused_naming_the_domain():
    broken = SOURCE.copy()
    broken[2, 0] = math.nan
    with pytest.raises(ConfigurationError, match=r"domain_similarity \(source_features\): features must be finite"):
        domain_similarity(broken, SOURCE_LABELS, TARGET, TARGET_LABELS)
