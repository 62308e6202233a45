"""NCE: how predictable the target labels are from source labels, as a negative conditional entropy.

Tran, Nguyen, Hassner, "Transferability and Hardness of Supervised Classification Tasks",
ICCV 2019. With Z the source label (or a pseudo-label) and Y the target label of each of
the n samples, from the empirical joint P(y, z) = |{i: y_i = y, z_i = z}| / n,

    NCE = -H(Y | Z) = sum_{y, z} P(y, z) log P(y | z),   P(y | z) = P(y, z) / P(z),

in [-log C, 0]; 0 when Z determines Y. A checkpoint without a source classifier gets its
Z from k-means on its features (:func:`kmeans_pseudo_labels`, :func:`nce_from_features`).
"""

import numpy as np
from sklearn.cluster import KMeans

from downstream.transferability._checks import (
    as_features,
    as_numpy,
    class_indices,
    features_and_classes,
    is_integer,
    require_option,
)
from selfsup.errors import ConfigurationError


def nce(source_labels, target_labels) -> float:
    """Negative conditional entropy -H(Y | Z) of target labels Y given source labels Z, both (N,)."""
    source_labels = as_numpy(source_labels)
    if source_labels.ndim != 1 or len(source_labels) < 2:
        raise ConfigurationError(
            f"nce: source_labels must be 1-D with at least 2 samples, got shape {source_labels.shape}."
        )
    targets, target_sizes = class_indices(target_labels, len(source_labels), "nce")
    _, sources = np.unique(source_labels, return_inverse=True)
    joint = np.zeros((len(target_sizes), sources.max() + 1))
    np.add.at(joint, (targets, sources), 1 / len(sources))
    source_marginal = joint.sum(axis=0, keepdims=True)
    occupied = joint > 0
    return float((joint[occupied] * np.log((joint / source_marginal)[occupied])).sum())


def kmeans_pseudo_labels(features, clusters: int, random_state: int = 0) -> np.ndarray:
    """Cluster index (N,) of every feature row by k-means with ``clusters`` clusters."""
    features = as_features(features, "nce")
    count = len(features)
    valid_clusters = is_integer(clusters) and 1 <= clusters <= count
    require_option(valid_clusters, "nce", "clusters", clusters, f"an integer in [1, N] = [1, {count}]")
    return KMeans(n_clusters=clusters, n_init=10, random_state=random_state).fit_predict(features)


def nce_from_features(features, labels, clusters: int | None = None, random_state: int = 0) -> float:
    """NCE with k-means pseudo-labels as Z; ``clusters`` defaults to the number of target classes."""
    features, classes, sizes = features_and_classes(features, labels, "nce")
    clusters = len(sizes) if clusters is None else clusters
    return nce(kmeans_pseudo_labels(features, clusters, random_state), classes)
