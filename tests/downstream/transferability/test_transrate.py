"""TransRate against the coding-rate formula written out, by hand and with d x d matrices."""

import math

import numpy as np
import pytest
from scipy.stats import ortho_group

from downstream.transferability import transrate


def direct_coding_rate(features: np.ndarray, epsilon: float) -> float:
    count, dim = features.shape
    return 0.5 * math.log(np.linalg.det(np.eye(dim) + dim / (count * epsilon**2) * features.T @ features))


def direct_transrate(features: np.ndarray, labels: np.ndarray, epsilon: float) -> float:
    centred = features - features.mean(axis=0)
    return direct_coding_rate(centred, epsilon) - sum(
        np.mean(labels == label) * direct_coding_rate(centred[labels == label], epsilon) for label in np.unique(labels)
    )


def test_hand_computation_in_two_dimensions():
    """Z^T Z = diag(16, 2) over n = 4; class 0 has diag(8, 2), class 1 (both at (2, 0)) diag(8, 0), each n_c = 2.

    R(Z) = 1/2 [log 9 + log 2], R(Z_0) = 1/2 [log 9 + log 3], R(Z_1) = 1/2 log 9 at epsilon = 1,
    so TransRate = 1/2 log 2 - 1/4 log 3.
    """
    features = np.array([[-2.0, 1.0], [-2.0, -1.0], [2.0, 0.0], [2.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    assert transrate(features, labels, epsilon=1.0) == pytest.approx(0.5 * math.log(2) - 0.25 * math.log(3), rel=1e-12)


@pytest.mark.parametrize(("count", "dim"), [(50, 4), (12, 20)], ids=["more-samples", "more-dimensions"])
def test_matches_the_formula_with_class_weights_n_c_over_n(count, dim):
    rng = np.random.default_rng(0)
    labels = np.minimum(np.arange(count) % 5, 2)
    features = rng.normal(size=(count, dim)) + 2 * rng.normal(size=(3, dim))[labels] + 5.0
    assert transrate(features, labels, epsilon=0.5) == pytest.approx(direct_transrate(features, labels, 0.5), rel=1e-10)


def test_an_orthogonal_rotation_changes_nothing_and_scaling_moves_with_epsilon():
    rng = np.random.default_rng(1)
    labels = np.arange(40) % 4
    features = rng.normal(size=(40, 6)) + np.eye(6)[labels]
    rotation = ortho_group.rvs(6, random_state=1)
    score = transrate(features, labels, epsilon=0.1)
    assert transrate(features @ rotation, labels, epsilon=0.1) == pytest.approx(score, rel=1e-10)
    assert transrate(3 * features, labels, epsilon=0.3) == pytest.approx(score, rel=1e-10)
    assert transrate(3 * features, labels, epsilon=0.1) != pytest.approx(score, rel=1e-3)


def test_more_separated_classes_score_higher():
    rng = np.random.default_rng(2)
    labels = np.arange(300) % 3
    noise = rng.normal(size=(300, 3))
    scores = [transrate(noise + separation * np.eye(3)[labels], labels) for separation in (0.1, 1.0, 3.0)]
    assert scores[0] < scores[1] < scores[2]


def test_two_balanced_classes_are_seen_apart_only_when_each_class_is_centred_on_its_own_mean():
    """Means +-m: every class has the second moment of the whole set, so the global-centring score stays ~0."""
    rng = np.random.default_rng(3)
    labels = np.arange(400) % 2
    noise = rng.normal(size=(400, 3))
    sign = np.where(labels == 1, 1.0, -1.0)[:, None]
    separated = [noise + separation * sign * np.eye(3)[0] for separation in (0.1, 1.0, 3.0)]
    assert max(abs(transrate(features, labels, epsilon=1.0)) for features in separated) < 0.05
    scores = [transrate(features, labels, epsilon=1.0, centre_classes=True) for features in separated]
    assert 0 < scores[0] < scores[1] < scores[2]
    assert scores[2] > 1.0


@pytest.mark.parametrize("centre_classes", [False, True])
def test_class_centring_is_the_only_difference_between_the_variants(centre_classes):
    rng = np.random.default_rng(4)
    labels = np.arange(30) % 3
    features = rng.normal(size=(30, 5)) + 3 * np.eye(5)[labels]
    centred = features - features.mean(axis=0)
    members = [centred[labels == c] - (centred[labels == c].mean(axis=0) if centre_classes else 0) for c in range(3)]
    expected = direct_coding_rate(centred, 0.2) - sum(direct_coding_rate(m, 0.2) for m in members) / 3
    assert transrate(features, labels, epsilon=0.2, centre_classes=centre_classes) == pytest.approx(expected, rel=1e-10)
