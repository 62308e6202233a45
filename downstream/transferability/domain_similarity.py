"""Domain similarity: the earth mover's distance between the class prototypes of two domains.

Cui, Song, Sun, Howard, Belongie, "Large Scale Fine-Grained Categorization and
Domain-Specific Transfer Learning", CVPR 2018, §4 (Matsui & Kumagai, *Transfer Learning*,
§6.2.4). Each domain is a weighted set of prototypes in one feature space: class c has the
mean g_c of its features and the weight w_c = n_c / N, its share of the domain's images.
With the ground cost d_ij = ||g_i - g_j||_2 between a source prototype i and a target
prototype j, the earth mover's distance is the cost of the cheapest flow f that moves the
source weights onto the target weights,

    EMD(S, T) = min_f sum_ij f_ij d_ij / sum_ij f_ij,
                f_ij >= 0,  sum_j f_ij = w_i^S,  sum_i f_ij = w_j^T,

(both weight vectors sum to 1, so sum_ij f_ij = 1), and the domain similarity is

    sim(S, T) = exp(-gamma EMD(S, T)),        gamma = 0.01 in the paper,

in (0, 1], 1 for domains with the same prototypes and weights, higher is more similar. The
EMD is a metric on weighted prototype sets: 0 for identical ones, symmetric, and a
translation of every target feature by t moves it by exactly ||t||. It is solved exactly
by POT's network simplex (``ot.emd2``); a solve that stops before optimality raises
``RuntimeError`` instead of returning a bound.

The labels are required. Unlabelled images can still be compared by giving each image a
label of its own (``labels = arange(N)``), which makes every image a prototype of weight
1 / N; the EMD is then the 1-Wasserstein distance between the two empirical distributions.
Each domain needs at least 2 images.
"""

import warnings

import numpy as np
import ot
from scipy.spatial.distance import cdist

from downstream.transferability._checks import as_features, as_numpy, is_positive_number, require_option
from selfsup.errors import ConfigurationError

#: The paper's scale of the distance in the similarity exp(-gamma d).
GAMMA = 0.01

#: Iteration cap of the network simplex: at least this many, or 100 per pair of prototypes.
_MIN_ITERATIONS = 1_000_000
_ITERATIONS_PER_PAIR = 100


def _prototypes(features, labels, score: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-class means of ``features`` (C x D, classes in sorted label order) and their weights n_c / N."""
    features = as_features(features, f"{score} ({name}_features)")
    labels = as_numpy(labels)
    if labels.ndim != 1 or len(labels) != len(features):
        raise ConfigurationError(
            f"{score}: {name}_labels must be 1-D with one entry per {name} sample ({len(features)}), "
            f"got shape {labels.shape}."
        )
    _, classes, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    prototypes = np.zeros((len(sizes), features.shape[1]))
    np.add.at(prototypes, classes, features)
    prototypes /= sizes[:, None]
    return prototypes, sizes / len(features)


def earth_movers_distance(source_features, source_labels, target_features, target_labels) -> float:
    """EMD between the class prototypes of the source (N_s x D) and the target (N_t x D), weighted by class share."""
    return _distance(source_features, source_labels, target_features, target_labels, "earth_movers_distance")


def domain_similarity(source_features, source_labels, target_features, target_labels, gamma: float = GAMMA) -> float:
    """exp(-gamma EMD) between the class prototypes of the source and the target domains, in (0, 1]."""
    require_option(is_positive_number(gamma), "domain_similarity", "gamma", gamma, "a finite number > 0")
    distance = _distance(source_features, source_labels, target_features, target_labels, "domain_similarity")
    return float(np.exp(-float(gamma) * distance))


def _distance(source_features, source_labels, target_features, target_labels, score: str) -> float:
    source, source_weights = _prototypes(source_features, source_labels, score, "source")
    target, target_weights = _prototypes(target_features, target_labels, score, "target")
    if source.shape[1] != target.shape[1]:
        raise ConfigurationError(
            f"{score}: source_features and target_features must have the same width D, "
            f"got {source.shape[1]} and {target.shape[1]}."
        )
    costs = cdist(source, target, metric="euclidean")
    iterations = max(_MIN_ITERATIONS, _ITERATIONS_PER_PAIR * costs.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # POT warns on failure; the result code below raises
        distance, log = ot.emd2(source_weights, target_weights, costs, numItermax=iterations, log=True)
    if log["result_code"] != 1:
        raise RuntimeError(
            f"{score}: the network simplex stopped with {log['warning']!r} after at most "
            f"{iterations} iterations on {costs.shape[0]} x {costs.shape[1]} prototypes."
        )
    return max(float(distance), 0.0)
