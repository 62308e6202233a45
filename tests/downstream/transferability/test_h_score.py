"""H-score against hand computations and the closed form of two Gaussian classes."""

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.covariance import ledoit_wolf_shrinkage

from downstream.transferability import h_score

POINTS = np.array([[-3.0], [-1.0], [1.0], [3.0]])
HALVES = np.array([0, 0, 1, 1])


@pytest.mark.parametrize("covariance", ["pseudo_inverse", "shrinkage"])
def test_one_dimension_is_between_class_over_total_variance(covariance):
    """Class means -2 and 2: between-class variance 4, total variance (9 + 1 + 1 + 9) / 4 = 5.

    In one dimension Ledoit-Wolf has nothing to shrink towards (alpha = 0), so both variants agree.
    """
    assert h_score(POINTS, HALVES, covariance=covariance) == pytest.approx(4 / 5, rel=1e-12)


def two_gaussian_classes(separation: float, spread: float, count: int = 400, dim: int = 4):
    """Class means +-separation e_1, within-class covariance exactly spread^2 I (the noise is whitened)."""
    rng = np.random.default_rng(0)
    labels = np.arange(count) % 2
    noise = rng.normal(size=(count, dim))
    for label in (0, 1):
        noise[labels == label] -= noise[labels == label].mean(axis=0)
    noise = noise @ np.linalg.inv(np.linalg.cholesky(noise.T @ noise / count)).T
    features = spread * noise
    features[:, 0] += separation * np.where(labels == 1, 1.0, -1.0)
    return features, labels


@pytest.mark.parametrize(("separation", "spread"), [(1.0, 1.0), (2.0, 0.5), (0.3, 2.0)])
def test_two_gaussian_classes_score_mu_squared_over_total_variance(separation, spread):
    """cov(f) = s^2 I + mu^2 e1 e1^T, cov(E[f | y]) = mu^2 e1 e1^T, so H = mu^2 / (s^2 + mu^2)."""
    features, labels = two_gaussian_classes(separation, spread)
    expected = separation**2 / (spread**2 + separation**2)
    assert h_score(features, labels, covariance="pseudo_inverse") == pytest.approx(expected, rel=1e-10)


def test_the_shrinkage_variant_is_the_regularised_formula_of_ibrahim_et_al():
    rng = np.random.default_rng(1)
    labels = np.arange(40) % 4
    features = rng.normal(size=(40, 10)) + np.eye(10)[labels] * 1.5
    alpha = ledoit_wolf_shrinkage(features)
    centred = features - features.mean(axis=0)
    sample_covariance = centred.T @ centred / 40
    shrunk = (1 - alpha) * sample_covariance + alpha * np.trace(sample_covariance) / 10 * np.eye(10)
    class_means = np.stack([centred[labels == c].mean(axis=0) for c in range(4)])
    between = class_means.T @ class_means / 4
    expected = np.trace(np.linalg.solve(shrunk, (1 - alpha) * between))
    assert 0 < alpha < 1
    assert h_score(features, labels) == pytest.approx(expected, rel=1e-10)


def test_the_pseudo_inverse_saturates_on_random_features_wider_than_the_sample_and_shrinkage_does_not():
    rng = np.random.default_rng(2)
    labels = np.arange(30) % 3
    noise = rng.normal(size=(30, 64))
    assert h_score(noise, labels, covariance="pseudo_inverse") == pytest.approx(2.0, rel=1e-8)
    assert h_score(noise, labels, covariance="shrinkage") < 0.5


def test_the_plain_score_ignores_any_invertible_linear_map_and_the_regularised_one_a_scaled_rotation():
    rng = np.random.default_rng(3)
    labels = np.arange(60) % 3
    features = rng.normal(size=(60, 5)) + np.eye(5)[labels]
    mixing = rng.normal(size=(5, 5)) + 3 * np.eye(5)
    rotation = 2.5 * ortho_group.rvs(5, random_state=3)
    assert h_score(features @ mixing, labels, covariance="pseudo_inverse") == pytest.approx(
        h_score(features, labels, covariance="pseudo_inverse"), rel=1e-9
    )
    assert h_score(features @ rotation + 4.0, labels) == pytest.approx(h_score(features, labels), rel=1e-9)


@pytest.mark.parametrize("covariance", ["pseudo_inverse", "shrinkage"])
def test_more_separated_classes_score_higher(covariance):
    scores = [h_score(*two_gaussian_classes(separation, 1.0), covariance=covariance) for separation in (0.2, 1, 3)]
    assert scores[0] < scores[1] < scores[2]
