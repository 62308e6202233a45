"""RSA: how alike two representations order the pairs of the same images by dissimilarity.

Dwivedi & Roig, "Representation Similarity Analysis for Efficient Task Taxonomy & Transfer
Learning", CVPR 2019, §3 (after Kriegeskorte, Mur, Bandettini, "Representational Similarity
Analysis", Front. Syst. Neurosci. 2008; Matsui & Kumagai, *Transfer Learning*, §6.2.4).
A model's representation of N images f_1..f_N is summarised by its representation
dissimilarity matrix (RDM), with Pearson correlation as in the paper,

    RDM_ij = 1 - pearson(f_i, f_j),     pearson(u, v) = (u - mean u) . (v - mean v) / (||u - mean u|| ||v - mean v||),

N x N, symmetric, zero diagonal, entries in [0, 2]. Two models are compared on the same
images, in the same order, by the Spearman correlation of the upper triangles (i < j,
diagonal left out) of their RDMs,

    RSA(a, b) = spearman( {RDM^a_ij}_{i<j}, {RDM^b_ij}_{i<j} ),

in [-1, 1], ties ranked by their average rank, 1 when both order the pairs alike.

What holds and what does not: the correlation between two images' vectors is unchanged by
scaling any vector by a positive number and by adding a constant to all of its entries, so
the RDM is too; Spearman depends on ranks only, so any increasing transform of either RDM
leaves RSA unchanged. A rotation of the feature space does change the Pearson correlation
between two vectors (it mixes the coordinates that the mean is taken over), so RSA is not
rotation invariant. A feature vector whose entries are all equal has no Pearson
correlation with anything and is refused, as are vectors of one dimension. RSA needs
N >= 3 images (3 pairs). Where either RDM's upper triangle is constant, the Spearman
correlation is undefined and the score is NaN.

As a label-based transferability score (this project's use of RSA, a stand-in for the
paper's comparison with a model trained on the target task), :func:`rsa_against_labels`
compares the features' RDM with the task's label RDM, 0 for two images of the same class
and 1 otherwise; higher means the representation's geometry matches the classes better.
"""

import numpy as np
from scipy.stats import rankdata

from downstream.transferability._checks import as_features, features_and_classes, is_integer, require_option
from selfsup.errors import ConfigurationError


def dissimilarity_matrix(features) -> np.ndarray:
    """RDM of features (N x D): 1 - the Pearson correlation between every two rows, N x N in [0, 2]."""
    return _dissimilarities(as_features(features, "dissimilarity_matrix"), "dissimilarity_matrix", "features")


def compare_dissimilarities(rdm_a, rdm_b) -> float:
    """Spearman correlation of the upper triangles (diagonal left out) of two N x N RDMs; NaN if either is constant.

    Only the entries above the diagonal are read, so any square matrices of dissimilarities will do.
    """
    rdm_a, rdm_b = (_rdm(rdm, "compare_dissimilarities", name) for rdm, name in ((rdm_a, "rdm_a"), (rdm_b, "rdm_b")))
    if len(rdm_a) != len(rdm_b):
        raise ConfigurationError(
            f"compare_dissimilarities: rdm_a and rdm_b must cover the same N images, got {len(rdm_a)} and {len(rdm_b)}."
        )
    upper = np.triu_indices(len(rdm_a), k=1)
    return _spearman(rdm_a[upper], rdm_b[upper])


def rsa(features_a, features_b) -> float:
    """RSA of two representations (N x D_a and N x D_b) of the same N >= 3 images in the same order, in [-1, 1]."""
    features_a = _features(features_a, "rsa", "features_a")
    features_b = _features(features_b, "rsa", "features_b")
    if len(features_a) != len(features_b):
        raise ConfigurationError(
            f"rsa: features_a and features_b must hold the same N images, got {len(features_a)} and {len(features_b)}."
        )
    upper = np.triu_indices(len(features_a), k=1)
    rdm_a = _dissimilarities(features_a, "rsa", "features_a")
    rdm_b = _dissimilarities(features_b, "rsa", "features_b")
    return _spearman(rdm_a[upper], rdm_b[upper])


def rsa_against_labels(features, labels, max_samples: int | None = 2000, seed: int = 0) -> float:
    """RSA of features (N x D) against the label RDM of labels (N,), 0 within a class and 1 across; higher is better.

    The RDMs hold N^2 entries: above ``max_samples`` images (``None``: no limit) a random
    subset of that many, drawn by ``seed``, stands for the set. Errors name the score ``rsa``,
    its name in :data:`~downstream.transferability.SCORES`.
    """
    require_option(
        max_samples is None or (is_integer(max_samples) and max_samples >= 3),
        "rsa",
        "max_samples",
        max_samples,
        "None (no limit) or an integer >= 3",
    )
    require_option(is_integer(seed) and seed >= 0, "rsa", "seed", seed, "an integer >= 0")
    features, classes, sizes = features_and_classes(features, labels, "rsa")
    if max_samples is not None and len(features) > max_samples:
        kept = np.sort(np.random.default_rng(seed).choice(len(features), size=max_samples, replace=False))
        features, classes = features[kept], classes[kept]
        sizes = np.bincount(classes)
    if sizes.max() < 2:
        raise ConfigurationError(
            "rsa: labels must put at least 2 samples in one class (else every pair differs "
            f"and the label RDM is constant), got {len(sizes)} classes of 1 sample each."
        )
    upper = np.triu_indices(len(features), k=1)
    label_rdm = (classes[:, None] != classes[None, :]).astype(np.float64)
    return _spearman(_dissimilarities(features, "rsa", "features")[upper], label_rdm[upper])


def _features(values, score: str, name: str) -> np.ndarray:
    features = as_features(values, f"{score} ({name})")
    if len(features) < 3:
        raise ConfigurationError(f"{score}: {name} must hold N >= 3 images (3 pairs), got {len(features)}.")
    return features


def _check_pearson_rows(features: np.ndarray, score: str, name: str) -> None:
    if features.shape[1] < 2:
        raise ConfigurationError(
            f"{score}: {name} must have D >= 2 dimensions for a Pearson correlation between rows, "
            f"got {features.shape[1]}."
        )
    constant = np.flatnonzero(np.ptp(features, axis=1) == 0)
    if len(constant):
        raise ConfigurationError(
            f"{score}: {name} rows must not be constant (no Pearson correlation), got {len(constant)} "
            f"constant of {len(features)}, the first row {int(constant[0])}."
        )


def _dissimilarities(features: np.ndarray, score: str, name: str) -> np.ndarray:
    _check_pearson_rows(features, score, name)
    centred = features - features.mean(axis=1, keepdims=True)
    centred /= np.linalg.norm(centred, axis=1, keepdims=True)
    dissimilarities = 1.0 - np.clip(centred @ centred.T, -1.0, 1.0)
    dissimilarities = (dissimilarities + dissimilarities.T) / 2
    np.fill_diagonal(dissimilarities, 0.0)
    return dissimilarities


def _rdm(values, score: str, name: str) -> np.ndarray:
    rdm = as_features(values, f"{score} ({name})")
    if rdm.shape[0] != rdm.shape[1] or len(rdm) < 3:
        raise ConfigurationError(f"{score}: {name} must be square, N x N with N >= 3, got shape {rdm.shape}.")
    return rdm


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    ranks_x = rankdata(x) - (len(x) + 1) / 2
    ranks_y = rankdata(y) - (len(y) + 1) / 2
    correlation = ranks_x @ ranks_y / np.sqrt((ranks_x @ ranks_x) * (ranks_y @ ranks_y))
    return float(np.clip(correlation, -1.0, 1.0))
