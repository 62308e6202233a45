"""Properties every registered score shares: inputs, invariances, monotonicity and the refusals."""

import numpy as np
import pytest
import torch

from downstream.transferability import SCORES
from selfsup.errors import ConfigurationError

#: Scores fitted by k-means or EM, whose optimum moves a little when the samples are reordered.
FITTED = {"nleep", "nce"}


def blobs(separation: float, count: int = 150, dim: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes, mean separation * e_c, unit Gaussian noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    return rng.normal(size=(count, dim)) + separation * np.eye(dim)[labels], labels


def test_the_registry_names_every_score():
    assert set(SCORES) == {"knn_loo", "logme", "nleep", "nce", "h_score", "gbc", "transrate", "rsa"}


@pytest.mark.parametrize("name", sorted(SCORES))
def test_more_separated_classes_score_higher(name):
    overlapping, well_apart = (SCORES[name](*blobs(separation)) for separation in (0.5, 4.0))
    assert well_apart > overlapping


@pytest.mark.parametrize("name", sorted(SCORES))
def test_tensors_and_arrays_give_the_same_float_and_neither_is_changed(name):
    features, labels = blobs(2.0)
    tensor_features, tensor_labels = torch.from_numpy(features.copy()), torch.from_numpy(labels.copy())
    from_arrays = SCORES[name](features, labels)
    from_tensors = SCORES[name](tensor_features, tensor_labels)
    assert isinstance(from_arrays, float) and isinstance(from_tensors, float)
    assert from_tensors == pytest.approx(from_arrays, rel=1e-12)
    assert np.array_equal(features, blobs(2.0)[0]) and np.array_equal(labels, blobs(2.0)[1])
    assert torch.equal(tensor_features, torch.from_numpy(blobs(2.0)[0]))


@pytest.mark.parametrize("name", sorted(SCORES))
def test_float32_features_are_scored_in_float64(name):
    features, labels = blobs(2.0)
    single = features.astype(np.float32)
    assert SCORES[name](single, labels) == pytest.approx(SCORES[name](single.astype(np.float64), labels), rel=1e-12)


@pytest.mark.parametrize("name", sorted(SCORES))
def test_reordering_the_samples_changes_nothing(name):
    features, labels = blobs(3.0)
    order = np.random.default_rng(1).permutation(len(labels))
    tolerance = 1e-4 if name in FITTED else 1e-10
    assert SCORES[name](features[order], labels[order]) == pytest.approx(SCORES[name](features, labels), rel=tolerance)


@pytest.mark.parametrize("name", sorted(SCORES))
def test_renaming_the_classes_changes_nothing(name):
    features, labels = blobs(1.0)
    renamed = np.array([7, -2, 30])[labels]
    assert SCORES[name](features, renamed) == pytest.approx(SCORES[name](features, labels), rel=1e-10)


def one_class(features, labels):
    return features, np.zeros_like(labels)


def two_non_finite_rows(features, labels):
    """Three non-finite values in two rows."""
    broken = features.copy()
    broken[3, :2], broken[10, 2] = np.nan, np.inf
    return broken, labels


BAD_INPUTS = {
    "one-dimensional features": (lambda f, y: (f[:, 0], y), "features must be 2-D"),
    "three-dimensional features": (lambda f, y: (f[:, :, None], y), "features must be 2-D"),
    "labels too short": (lambda f, y: (f, y[:-1]), "one entry per sample"),
    "labels not 1-D": (lambda f, y: (f, y[:, None]), "labels must be 1-D"),
    "a single class": (one_class, "at least 2 classes"),
    "non-finite rows": (two_non_finite_rows, "in 2 of 150 rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("name", sorted(SCORES))
def test_bad_inputs_are_refused_in_one_line_naming_the_argument(name, case):
    corrupt, message = BAD_INPUTS[case]
    with pytest.raises(ConfigurationError, match=message) as refusal:
        SCORES[name](*corrupt(*blobs(1.0)))
    assert "\n" not in str(refusal.value)
    assert str(refusal.value).startswith(f"{name}: ")


BAD_OPTIONS = [
    ("knn_loo", {"k": 0}, "k must be an integer in"),
    ("knn_loo", {"k": 150}, r"k must be an integer in \[1, N - 1\] = \[1, 149\]"),
    ("knn_loo", {"k": 2.5}, "k must be an integer"),
    ("knn_loo", {"weighting": "distance"}, "weighting must be one of"),
    ("knn_loo", {"weighting": "similarity", "temperature": 0.0}, "temperature must be a finite number > 0"),
    ("transrate", {"epsilon": 0.0}, "epsilon must be a finite number > 0"),
    ("transrate", {"epsilon": -1.0}, "epsilon must be a finite number > 0"),
    ("transrate", {"epsilon": float("nan")}, "epsilon must be a finite number > 0"),
    ("h_score", {"covariance": "empirical"}, "covariance must be one of"),
    ("gbc", {"gaussian": "full"}, "gaussian must be one of"),
    ("gbc", {"dimensions": 0}, "dimensions must be None"),
    ("nleep", {"variance_kept": 1.5}, r"variance_kept must be None \(no PCA\) or in \(0, 1\)"),
    ("nleep", {"components": 0}, "components must be an integer in"),
    ("nleep", {"covariance_type": "block"}, "covariance_type must be one of"),
    ("nce", {"clusters": 151}, r"clusters must be an integer in \[1, N\] = \[1, 150\]"),
]


@pytest.mark.parametrize(("name", "options", "message"), BAD_OPTIONS)
def test_bad_options_are_refused_with_their_valid_range(name, options, message):
    with pytest.raises(ConfigurationError, match=message) as refusal:
        SCORES[name](*blobs(1.0), **options)
    assert "\n" not in str(refusal.value)
