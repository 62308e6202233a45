"""Transferability scores: how well frozen features suit a labelled task, without training on it.

Every entry of :data:`SCORES` is a pure function ``(features (N x D), labels (N,), **options)
-> float`` of a tensor or an array, computed in float64 without changing its inputs; higher
means more transferable. Each module cites its paper and writes out the formula.

- ``knn_loo``: leave-one-out k-NN accuracy (:mod:`.knn_loo`), the plain baseline.
- ``logme``: LogME (:mod:`downstream.logme`).
- ``nleep``: N-LEEP, LEEP on Gaussian-mixture posteriors (:mod:`.leep`); LEEP itself needs a
  source classifier's probabilities and is :func:`leep`.
- ``nce``: NCE on k-means pseudo-labels (:mod:`.nce`); :func:`nce` takes source labels.
- ``h_score``: H-score, Ledoit-Wolf regularised by default (:mod:`.h_score`).
- ``gbc``: Gaussian Bhattacharyya coefficient (:mod:`.gbc`).
- ``transrate``: TransRate (:mod:`.transrate`).
- ``rsa``: RSA against the labels' dissimilarities (:mod:`.rsa`, whose ``rsa`` compares two models).

Beside the scores, and with other inputs: Task2Vec task embeddings and distances
(:mod:`.task2vec`), Cui et al.'s domain similarity (:mod:`.domain_similarity`, whose function
of the same name is imported from the module), Taskonomy's affinity from per-example losses
(:mod:`.affinity`), and how a score's ranking agrees with training (:mod:`.agreement`).
"""

from collections.abc import Callable

import torch

from downstream.logme import logme as _logme
from downstream.transferability._checks import features_and_classes
from downstream.transferability.affinity import affinity_ranking, win_rates
from downstream.transferability.domain_similarity import earth_movers_distance
from downstream.transferability.gbc import gbc
from downstream.transferability.h_score import h_score
from downstream.transferability.knn_loo import knn_loo_accuracy
from downstream.transferability.leep import leep, nleep
from downstream.transferability.nce import kmeans_pseudo_labels, nce, nce_from_features
from downstream.transferability.rsa import rsa_against_labels
from downstream.transferability.task2vec import task_distance, task_distances, task_embedding
from downstream.transferability.transrate import transrate


def logme(features, labels, **options) -> float:
    """LogME of a tensor or an array, after the same entry checks as the other scores."""
    features, classes, _ = features_and_classes(features, labels, "logme")
    return _logme(torch.from_numpy(features), torch.from_numpy(classes), **options)


SCORES: dict[str, Callable[..., float]] = {
    "knn_loo": knn_loo_accuracy,
    "logme": logme,
    "nleep": nleep,
    "nce": nce_from_features,
    "h_score": h_score,
    "gbc": gbc,
    "transrate": transrate,
    "rsa": rsa_against_labels,
}

__all__ = [
    "SCORES",
    "affinity_ranking",
    "earth_movers_distance",
    "gbc",
    "h_score",
    "kmeans_pseudo_labels",
    "knn_loo_accuracy",
    "leep",
    "logme",
    "nce",
    "nce_from_features",
    "nleep",
    "rsa_against_labels",
    "task_distance",
    "task_distances",
    "task_embedding",
    "transrate",
    "win_rates",
]
