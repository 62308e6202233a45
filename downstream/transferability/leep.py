"""LEEP and N-LEEP: how well a source classifier's outputs, re-mapped to the target labels, predict them.

Nguyen, Hassner, Seeger, Archambeau, "LEEP: A New Measure to Evaluate Transferability of
Learned Representations", ICML 2020. With θ(x_i) the source classifier's probabilities over
its Z classes and y_i the target labels of the n samples,

    P(y, z) = 1/n sum_{i: y_i = y} θ(x_i)_z,      P(y | z) = P(y, z) / sum_y' P(y', z)   (eq. 1)
    LEEP    = 1/n sum_i log sum_z P(y_i | z) θ(x_i)_z                                   (eq. 2)

a log-likelihood, <= 0, higher is better.

N-LEEP (Li, Jia, Sun, Lin, Li, Zhou, Ma, "Ranking Neural Checkpoints", CVPR 2021) needs no
source classifier: the features are reduced by PCA to the components that keep 80% of their
variance, a Gaussian mixture is fitted to them, and its posteriors stand in for θ.
"""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from downstream.transferability._checks import (
    as_numpy,
    class_indices,
    features_and_classes,
    is_integer,
    is_positive_number,
    require_option,
)
from selfsup.errors import ConfigurationError

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def leep(probabilities, labels) -> float:
    """LEEP of source-class probabilities θ (N x Z, rows summing to 1) for target labels (N,)."""
    probabilities = as_numpy(probabilities).astype(np.float64, copy=False)
    if probabilities.ndim != 2 or probabilities.shape[0] < 2 or probabilities.shape[1] < 1:
        raise ConfigurationError(
            f"leep: probabilities must be 2-D, N samples x Z source classes with N >= 2, "
            f"got shape {probabilities.shape}."
        )
    if not (np.isfinite(probabilities).all() and (probabilities >= 0).all()):
        raise ConfigurationError("leep: probabilities must be finite and >= 0, got NaN, infinite or negative values.")
    worst_row_error = float(np.abs(probabilities.sum(axis=1) - 1).max())
    if worst_row_error > 1e-6:
        raise ConfigurationError(
            f"leep: probabilities must have rows summing to 1 (within 1e-6), got a row off by {worst_row_error:.3g}."
        )
    classes, sizes = class_indices(labels, len(probabilities), "leep")
    joint = np.zeros((len(sizes), probabilities.shape[1]))
    np.add.at(joint, classes, probabilities / len(probabilities))
    source_marginal = joint.sum(axis=0)
    conditional = np.divide(joint, source_marginal, out=np.zeros_like(joint), where=source_marginal > 0)
    expected_prediction = np.einsum("iz,iz->i", probabilities, conditional[classes])
    return float(np.log(expected_prediction).mean())


def nleep(
    features,
    labels,
    components: int | None = None,
    variance_kept: float | None = 0.8,
    covariance_type: str = "full",
    random_state: int = 0,
) -> float:
    """N-LEEP: LEEP of the posteriors of a Gaussian mixture fitted to the (PCA-reduced) features.

    ``components`` defaults to the number of target classes; ``variance_kept`` is the
    fraction of variance the PCA keeps, ``None`` for no PCA.
    """
    features, classes, sizes = features_and_classes(features, labels, "nleep")
    components = len(sizes) if components is None else components
    count = len(features)
    valid_components = is_integer(components) and 1 <= components <= count
    require_option(valid_components, "nleep", "components", components, f"an integer in [1, N] = [1, {count}]")
    valid_variance = variance_kept is None or (is_positive_number(variance_kept) and variance_kept < 1)
    require_option(valid_variance, "nleep", "variance_kept", variance_kept, "None (no PCA) or in (0, 1)")
    valid_covariance = covariance_type in COVARIANCE_TYPES
    require_option(valid_covariance, "nleep", "covariance_type", covariance_type, f"one of {COVARIANCE_TYPES}")
    if variance_kept is not None:
        features = PCA(n_components=variance_kept, svd_solver="full").fit_transform(features)
    mixture = GaussianMixture(n_components=components, covariance_type=covariance_type, random_state=random_state)
    posteriors = mixture.fit(features).predict_proba(features)
    return leep(posteriors, classes)
