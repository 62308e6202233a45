"""H-score: how much of the features' variance lies between the class means, in the features' own metric.

Bao, Li, Huang, Zhang, Zheng, "An Information-Theoretic Approach to Transferability in Task
Transfer Learning", ICIP 2019, the H-score definition:

    H(f) = tr( cov(f)^-1 cov(E[f | y]) ),

where E[f | y] replaces every sample's feature by the mean feature of its class. Both
covariances are taken over the n samples with the same 1/n normalisation, so
cov(E[f | y]) = sum_c (n_c / n) (mu_c - mu)(mu_c - mu)^T. H lies in [0, C - 1]; higher is better.

``covariance="pseudo_inverse"`` is Bao et al.'s score with cov(f)^-1 read as the
Moore-Penrose pseudo-inverse. With D close to or above N the sample covariance is singular
and noisy, and the score saturates: random features with D >= N - 1 score exactly C - 1.
``covariance="shrinkage"`` (the default) is the regularised H-score of Ibrahim, Ponomareva,
Mazumder, "Newer is not always better: Rethinking transferability metrics, their
peculiarities, stability and performance", ECML PKDD 2022:

    H_alpha(f) = tr( cov_alpha(f)^-1 (1 - alpha) cov(E[f | y]) ),
    cov_alpha(f) = (1 - alpha) cov(f) + alpha tr(cov(f)) / D I,

with the shrinkage alpha of Ledoit and Wolf (sklearn.covariance.LedoitWolf), which shrinks
the class-mean covariance by the same (1 - alpha) as the feature covariance.
"""

import numpy as np
from scipy.linalg import pinvh
from sklearn.covariance import LedoitWolf

from downstream.transferability._checks import features_and_classes, require_option

COVARIANCES = ("shrinkage", "pseudo_inverse")


def h_score(features, labels, covariance: str = "shrinkage") -> float:
    """H-score of features (N x D) for labels (N,); ``covariance`` picks how cov(f) is inverted."""
    features, classes, sizes = features_and_classes(features, labels, "h_score")
    require_option(covariance in COVARIANCES, "h_score", "covariance", covariance, f"one of {COVARIANCES}")
    count = len(features)
    centred = features - features.mean(axis=0)
    class_means = np.zeros((len(sizes), features.shape[1]))
    np.add.at(class_means, classes, centred)
    class_means /= sizes[:, None]
    between_classes = (class_means.T * (sizes / count)) @ class_means
    if covariance == "pseudo_inverse":
        return float(np.trace(pinvh(centred.T @ centred / count) @ between_classes))
    shrunk = LedoitWolf().fit(features)
    return float(np.trace(pinvh(shrunk.covariance_) @ ((1 - shrunk.shrinkage_) * between_classes)))
