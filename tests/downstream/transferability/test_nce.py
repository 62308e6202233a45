"""NCE on joint distributions whose conditional entropy is computed by hand."""

import math

import numpy as np
import pytest

from downstream.transferability import kmeans_pseudo_labels, nce, nce_from_features


def pairs(counts: dict[tuple[int, int], int]) -> tuple[np.ndarray, np.ndarray]:
    """Source and target labels holding ``counts[(z, y)]`` samples of every pair."""
    source, target = zip(*[pair for pair, count in counts.items() for _ in range(count)])
    return np.array(source), np.array(target)


def test_symmetric_two_by_two_table():
    """P(y | z) is (3/4, 1/4) for both z, so H(Y | Z) = H(3/4)."""
    source, target = pairs({(0, 0): 3, (0, 1): 1, (1, 0): 1, (1, 1): 3})
    assert nce(source, target) == pytest.approx(0.75 * math.log(0.75) + 0.25 * math.log(0.25), rel=1e-12)


def test_asymmetric_two_by_two_table():
    """z = 0 fixes y (entropy 0), z = 1 leaves a fair coin (log 2); each z has half the samples."""
    source, target = pairs({(0, 0): 4, (1, 0): 2, (1, 1): 2})
    assert nce(source, target) == pytest.approx(-0.5 * math.log(2), rel=1e-12)


def test_source_labels_that_determine_the_target_score_zero_and_independent_ones_minus_its_entropy():
    """Both source classes see targets (0, 1, 1): P(y | z) = P(y) = (1/3, 2/3)."""
    target = np.array([0, 0, 1, 1, 1, 1])
    assert nce(np.array([5, 5, 2, 2, 9, 9]), target) == 0.0
    independent = nce(np.array([0, 1, 0, 1, 0, 1]), target)
    assert independent == pytest.approx((1 / 3) * math.log(1 / 3) + (2 / 3) * math.log(2 / 3), rel=1e-12)


def test_renaming_source_or_target_classes_changes_nothing():
    source, target = pairs({(0, 0): 3, (0, 1): 1, (1, 0): 2, (1, 1): 5, (2, 1): 2})
    assert nce(10 - 3 * source, 7 * target + 1) == pytest.approx(nce(source, target), rel=1e-12)


def test_kmeans_recovers_well_separated_clusters_and_nce_then_is_zero():
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    features = 10 * np.eye(3)[labels] + 0.1 * rng.normal(size=(60, 3))
    clusters = kmeans_pseudo_labels(features, 3)
    assert len(set(zip(clusters, labels))) == 3
    assert nce_from_features(features, labels) == 0.0
