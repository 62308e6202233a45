"""LEEP against a 4-sample hand computation, and N-LEEP against its recipe written out."""

import math

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from downstream.transferability import leep, nleep
from selfsup.errors import ConfigurationError

THETA = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
TARGETS = np.array([0, 0, 1, 1])


def test_leep_matches_the_hand_computation():
    """P(y, z) = [[0.35, 0.15], [0.10, 0.40]], P(z) = [0.45, 0.55], so P(y | z) = [[7/9, 3/11], [2/9, 8/11]]."""
    expected_predictions = [
        0.8 * 7 / 9 + 0.2 * 3 / 11,
        0.6 * 7 / 9 + 0.4 * 3 / 11,
        0.3 * 2 / 9 + 0.7 * 8 / 11,
        0.1 * 2 / 9 + 0.9 * 8 / 11,
    ]
    assert leep(THETA, TARGETS) == pytest.approx(np.mean(np.log(expected_predictions)), rel=1e-12)


def test_a_source_that_names_the_target_class_scores_zero():
    assert leep(np.eye(2)[TARGETS], TARGETS) == pytest.approx(0.0, abs=1e-15)


def test_an_uninformative_source_scores_minus_the_label_entropy():
    targets = np.array([0, 0, 0, 1])
    uniform = np.full((4, 3), 1 / 3)
    assert leep(uniform, targets) == pytest.approx(0.75 * math.log(0.75) + 0.25 * math.log(0.25), rel=1e-12)


def test_source_classes_can_be_reordered_or_never_predicted():
    padded = np.concatenate([THETA[:, ::-1], np.zeros((4, 1))], axis=1)
    assert leep(padded, TARGETS) == pytest.approx(leep(THETA, TARGETS), rel=1e-12)


@pytest.mark.parametrize(
    ("probabilities", "message"),
    [
        (THETA[:, 0], "2-D"),
        (THETA * 2, "rows summing to 1"),
        (np.array([[1.5, -0.5]] * 4), ">= 0"),
        (np.where(THETA == 0.8, np.nan, THETA), "finite"),
    ],
    ids=["one-dimensional", "unnormalised", "negative", "nan"],
)
def test_leep_refuses_what_is_not_a_probability_table(probabilities, message):
    with pytest.raises(ConfigurationError, match=message):
        leep(probabilities, TARGETS)


def test_nleep_is_leep_on_the_posteriors_of_a_mixture_fitted_after_pca():
    rng = np.random.default_rng(0)
    labels = np.arange(90) % 3
    features = rng.normal(size=(90, 4)) * [4.0, 3.0, 2.5, 1.5]
    features[:, :2] += 3 * rng.normal(size=(3, 2))[labels]
    reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(features)
    posteriors = GaussianMixture(n_components=3, random_state=0).fit(reduced).predict_proba(reduced)
    assert reduced.shape[1] == 2, "two components explain 81% of the variance, three 94%"
    assert nleep(features, labels) == pytest.approx(leep(posteriors, labels), rel=1e-12)
