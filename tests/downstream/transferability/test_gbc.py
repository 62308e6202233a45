"""GBC against the Bhattacharyya coefficient of Gaussians in closed form."""

import math

import numpy as np
import pytest
from scipy.stats import ortho_group

from downstream.transferability import gbc
from selfsup.errors import ConfigurationError

HALVES = np.array([0, 0, 1, 1])


@pytest.mark.parametrize("dimensions", [None, 64])
def test_two_equal_variance_classes_overlap_by_exp_of_minus_mu_squared_over_two_sigma_squared(dimensions):
    """N(-2, 1) and N(2, 1) (maximum-likelihood estimates of the points): BC = exp(-2^2 / 2), counted twice."""
    points = np.array([[-3.0], [-1.0], [1.0], [3.0]])
    assert gbc(points, HALVES, dimensions=dimensions) == pytest.approx(-2 * math.exp(-2.0), rel=1e-12)


def test_unequal_variances_add_the_log_determinant_term():
    """N(0, 1) vs N(10, 4): D_B = 10^2 / (4 (1 + 4)) + 1/2 log((1 + 4) / (2 * 1 * 2))."""
    points = np.array([[-1.0], [1.0], [8.0], [12.0]])
    distance = 100 / 20 + 0.5 * math.log(5 / 4)
    assert gbc(points, HALVES, dimensions=None) == pytest.approx(-2 * math.exp(-distance), rel=1e-12)


def test_diagonal_and_spherical_gaussians():
    """Variances (1, 4) in both classes, means 4 apart on the first axis.

    Diagonal: D_B = 4^2 / (8 * 1). Spherical: both variances become 2.5, D_B = 4^2 / (8 * 2.5).
    """
    points = np.array([[-1.0, -2.0], [1.0, 2.0], [3.0, -2.0], [5.0, 2.0]])
    assert gbc(points, HALVES, dimensions=None) == pytest.approx(-2 * math.exp(-2.0), rel=1e-12)
    assert gbc(points, HALVES, dimensions=None, gaussian="spherical") == pytest.approx(-2 * math.exp(-0.8), rel=1e-12)


def test_identical_classes_overlap_completely():
    rng = np.random.default_rng(0)
    block = rng.normal(size=(5, 3))
    features, labels = np.concatenate([block] * 3), np.repeat([0, 1, 2], 5)
    assert gbc(features, labels) == pytest.approx(-6.0, rel=1e-10)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide")  # PCA of zero variance
def test_collapsed_features_score_the_worst_and_classes_collapsed_to_distinct_points_the_best():
    labels = np.repeat([0, 1, 2], 4)
    assert gbc(np.zeros((12, 5)), labels) == pytest.approx(-6.0, rel=1e-12)
    assert gbc(np.eye(5)[labels], labels) == pytest.approx(0.0, abs=1e-300)


def test_more_separated_classes_score_higher():
    rng = np.random.default_rng(1)
    labels = np.arange(200) % 2
    noise = rng.normal(size=(200, 3))
    scores = [gbc(noise + separation * np.eye(3)[labels], labels) for separation in (0.1, 1.0, 3.0)]
    assert scores[0] < scores[1] < scores[2] < 0


def test_with_pca_keeping_every_dimension_a_rotation_changes_nothing():
    rng = np.random.default_rng(2)
    labels = np.arange(60) % 3
    features = rng.normal(size=(60, 4)) * [3.0, 2.0, 1.0, 0.5] + np.eye(4)[labels]
    rotation = ortho_group.rvs(4, random_state=2)
    assert gbc(features @ rotation, labels) == pytest.approx(gbc(features, labels), rel=1e-8)


def test_a_class_of_one_sample_has_no_variance_and_is_refused():
    with pytest.raises(ConfigurationError, match="at least 2 samples"):
        gbc(np.arange(5.0)[:, None], np.array([0, 0, 1, 1, 2]))
