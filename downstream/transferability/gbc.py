"""GBC: how much the per-class Gaussians of the features overlap, by the Bhattacharyya coefficient.

Pándy, Agostinelli, Uijlings, Ferrari, Mensink, "Transferability Estimation using
Bhattacharyya Class Separability", CVPR 2022. The features are reduced by PCA, each class c
is modelled as a Gaussian N(mu_c, Sigma_c) with diagonal (default) or spherical covariance,
and for every pair of classes

    D_B(i, j) = 1/8 (mu_i - mu_j)^T Sigma^-1 (mu_i - mu_j) + 1/2 log( det Sigma / sqrt(det Sigma_i det Sigma_j) ),
    Sigma = (Sigma_i + Sigma_j) / 2,     BC(i, j) = exp(-D_B(i, j)),

    GBC = - sum_i sum_{j != i} BC(i, j)

over ordered pairs, in [-C(C - 1), 0]: 0 when the classes do not overlap, higher is better.
Class variances are the maximum-likelihood (1/n_c) estimates, so every class needs two
samples. A variance that is exactly zero (a class collapsed to a point along an axis) is
raised to 1e-12 times the features' mean variance, which keeps D_B finite.
"""

import numpy as np
from sklearn.decomposition import PCA

from downstream.transferability._checks import features_and_classes, is_integer, require_option

GAUSSIANS = ("diagonal", "spherical")

#: Smallest class variance, relative to the mean variance of all features.
_RELATIVE_VARIANCE_FLOOR = 1e-12


def gbc(features, labels, dimensions: int | None = 64, gaussian: str = "diagonal") -> float:
    """GBC of features (N x D) for labels (N,) on ``dimensions`` PCA components (``None``: no PCA)."""
    features, classes, sizes = features_and_classes(features, labels, "gbc", smallest_class=2)
    valid_dimensions = dimensions is None or (is_integer(dimensions) and dimensions >= 1)
    require_option(valid_dimensions, "gbc", "dimensions", dimensions, "None (no PCA) or an integer >= 1")
    require_option(gaussian in GAUSSIANS, "gbc", "gaussian", gaussian, f"one of {GAUSSIANS}")
    if dimensions is not None:
        features = PCA(n_components=min(dimensions, *features.shape)).fit_transform(features)
    means = np.zeros((len(sizes), features.shape[1]))
    np.add.at(means, classes, features)
    means /= sizes[:, None]
    variances = np.zeros_like(means)
    np.add.at(variances, classes, (features - means[classes]) ** 2)
    variances /= sizes[:, None]
    if gaussian == "spherical":
        variances = np.repeat(variances.mean(axis=1, keepdims=True), features.shape[1], axis=1)
    overall_variance = features.var(axis=0).mean()
    floor = _RELATIVE_VARIANCE_FLOOR * overall_variance if overall_variance > 0 else 1.0
    variances = np.maximum(variances, floor)
    log_variances = np.log(variances)
    overlap = 0.0
    for i in range(len(sizes)):
        average = (variances[i] + variances) / 2
        distance = ((means[i] - means) ** 2 / average).sum(axis=1) / 8 + (
            np.log(average) - (log_variances[i] + log_variances) / 2
        ).sum(axis=1) / 2
        coefficients = np.exp(-distance)
        overlap += coefficients.sum() - coefficients[i]
    return float(-overlap)
