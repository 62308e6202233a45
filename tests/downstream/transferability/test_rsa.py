"""RSA against Pearson dissimilarities worked out by hand and scipy's Spearman correlation."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from downstream.transferability.rsa import compare_dissimilarities, dissimilarity_matrix, rsa, rsa_against_labels
from selfsup.errors import ConfigurationError


def test_dissimilarity_matrix_of_three_vectors_by_hand():
    """Centred: (-1, 0, 1), (1, 0, -1), (-1, 1, 0). Correlations -1, 1/2 and -1/2."""
    features = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 3.0, 2.0]])
    expected = np.array([[0.0, 2.0, 0.5], [2.0, 0.0, 1.5], [0.5, 1.5, 0.0]])
    np.testing.assert_allclose(dissimilarity_matrix(features), expected, rtol=0, atol=1e-15)


def test_dissimilarity_matrix_is_one_minus_numpys_correlation():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(20, 7))
    rdm = dissimilarity_matrix(features)
    np.testing.assert_allclose(rdm, 1 - np.corrcoef(features), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(rdm, rdm.T)
    np.testing.assert_array_equal(np.diag(rdm), 0.0)


def test_a_representation_matches_itself():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(15, 6))
    assert rsa(features, features) == pytest.approx(1.0, abs=1e-12)


def test_rsa_is_spearman_of_the_upper_triangles_and_symmetric():
    rng = np.random.default_rng(2)
    features_a, features_b = rng.normal(size=(25, 10)), rng.normal(size=(25, 4))
    upper = np.triu_indices(25, k=1)
    expected = spearmanr((1 - np.corrcoef(features_a))[upper], (1 - np.corrcoef(features_b))[upper]).statistic
    assert rsa(features_a, features_b) == pytest.approx(expected, abs=1e-10)
    assert rsa(features_b, features_a) == pytest.approx(rsa(features_a, features_b), abs=1e-15)
    assert -1 <= rsa(features_a, features_b) <= 1


def test_positive_scaling_and_shifting_of_each_vector_changes_nothing():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(12, 5))
    scales, shifts = rng.uniform(0.1, 10.0, size=(12, 1)), rng.normal(size=(12, 1)) * 5
    transformed = features * scales + shifts
    np.testing.assert_allclose(dissimilarity_matrix(transformed), dissimilarity_matrix(features), rtol=0, atol=1e-12)
    other = rng.normal(size=(12, 3))
    assert rsa(transformed * 3.0, other) == pytest.approx(rsa(features, other), abs=1e-12)


def test_an_increasing_transform_of_an_rdm_leaves_the_comparison_unchanged():
    rng = np.random.default_rng(4)
    rdm_a, rdm_b = dissimilarity_matrix(rng.normal(size=(10, 4))), dissimilarity_matrix(rng.normal(size=(10, 4)))
    reference = compare_dissimilarities(rdm_a, rdm_b)
    assert compare_dissimilarities(np.exp(3 * rdm_a), rdm_b**3 + 1) == pytest.approx(reference, abs=1e-12)
    assert compare_dissimilarities(-rdm_a, rdm_b) == pytest.approx(-reference, abs=1e-12)


def test_rsa_against_labels_is_spearman_against_the_label_rdm():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, size=30)
    features = rng.normal(size=(30, 6)) + 2 * np.eye(6)[labels]
    upper = np.triu_indices(30, k=1)
    label_rdm = (labels[:, None] != labels[None, :]).astype(float)
    expected = spearmanr((1 - np.corrcoef(features))[upper], label_rdm[upper]).statistic
    assert rsa_against_labels(features, labels) == pytest.approx(expected, abs=1e-10)


def test_rsa_against_labels_is_higher_for_features_that_separate_the_classes():
    rng = np.random.default_rng(6)
    labels = np.arange(60) % 4
    noise = rng.normal(size=(60, 8))
    scores = [rsa_against_labels(noise + separation * np.eye(8)[labels], labels) for separation in (0.0, 1.0, 4.0)]
    assert abs(scores[0]) < 0.1
    assert scores[0] < scores[1] < scores[2] <= 1


def test_tensors_give_the_same_scores_and_the_inputs_are_left_unchanged():
    rng = np.random.default_rng(7)
    features_a, features_b, labels = rng.normal(size=(9, 4)), rng.normal(size=(9, 5)), np.arange(9) % 3
    copies = [array.copy() for array in (features_a, features_b, labels)]
    tensor_a, tensor_b = torch.from_numpy(features_a.copy()).float(), torch.from_numpy(features_b.copy())
    tensor_copies = [tensor_a.clone(), tensor_b.clone()]
    assert rsa(tensor_a, tensor_b) == pytest.approx(rsa(features_a, features_b), abs=1e-6)
    assert rsa_against_labels(tensor_b, torch.from_numpy(labels)) == pytest.approx(
        rsa_against_labels(features_b, labels), abs=1e-12
    )
    assert dissimilarity_matrix(tensor_a).dtype == np.float64
    for array, copy in zip((features_a, features_b, labels), copies):
        np.testing.assert_array_equal(array, copy)
    assert torch.equal(tensor_a, tensor_copies[0]) and torch.equal(tensor_b, tensor_copies[1])


def test_a_constant_feature_vector_is_refused():
    features = np.array([[1.0, 2.0, 3.0], [0.1, 0.1, 0.1], [3.0, 1.0, 2.0], [2.0, 2.0, 2.0]])
    message = (
        r"rsa: features_b rows must not be constant \(no Pearson correlation\), got 2 constant of 4, the first row 1\."
    )
    with pytest.raises(ConfigurationError, match=message):
        rsa(np.random.default_rng(9).normal(size=(4, 3)), features)
    with pytest.raises(ConfigurationError, match="dissimilarity_matrix: features rows must not be constant"):
        dissimilarity_matrix(features)


def test_one_dimensional_features_are_refused():
    with pytest.raises(ConfigurationError, match="features_a must have D >= 2 dimensions"):
        rsa(np.arange(4.0)[:, None], np.ones((4, 2)))


def test_fewer_than_three_images_are_refused():
    with pytest.raises(ConfigurationError, match="rsa: features_a must hold N >= 3 images"):
        rsa(np.eye(2), np.eye(2))


def test_a_different_number_of_images_is_refused():
    with pytest.raises(ConfigurationError, match="same N images, got 4 and 5"):
        rsa(np.eye(4), np.eye(5))


def test_labels_with_one_sample_per_class_are_refused():
    with pytest.raises(ConfigurationError, match="at least 2 samples in one class"):
        rsa_against_labels(np.eye(4), np.arange(4))


def test_a_constant_rdm_has_no_spearman_correlation():
    """Three vectors whose pairwise correlations are all -1/2: the upper triangle is constant."""
    features = np.eye(3)
    assert np.isnan(rsa(features, np.random.default_rng(8).normal(size=(3, 4))))


def test_rdms_that_are_not_square_or_differ_in_size_are_refused():
    with pytest.raises(ConfigurationError, match="rdm_b must be square, N x N with N >= 3, got shape"):
        compare_dissimilarities(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ConfigurationError, match="same N images, got 3 and 4"):
        compare_dissimilarities(np.zeros((3, 3)), np.zeros((4, 4)))


def test_non_finite_features_are_refused():
    features = np.eye(4)
    features[0, 0] = math.nan
    with pytest.raises(ConfigurationError, match=r"rsa \(features_a\): features must be finite"):
        rsa(features, np.eye(4))


def test_above_max_samples_a_seeded_subset_stands_for_the_set():
    rng = np.random.default_rng(5)
    labels = np.arange(300) % 3
    features = rng.normal(size=(300, 6)) + 2.0 * np.eye(6)[labels]
    full = rsa_against_labels(features, labels, max_samples=None)
    subset = rsa_against_labels(features, labels, max_samples=120)
    assert subset == rsa_against_labels(features, labels, max_samples=120)
    assert subset != full and subset == pytest.approx(full, abs=0.05)
    assert rsa_against_labels(features, labels, max_samples=300) == full


@pytest.mark.parametrize("bad", [0, 2, -1, 2.5, True, float("nan"), "100"])
def test_bad_max_samples_is_refused(bad):
    with pytest.raises(ConfigurationError, match="rsa: max_samples must be None"):
        rsa_against_labels(np.eye(4) + 0.1, np.array([0, 0, 1, 1]), max_samples=bad)
