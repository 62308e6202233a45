"""Leave-one-out k-nearest-neighbour accuracy: the plain baseline every transferability table carries.

Each sample is classified by its k most cosine-similar *other* samples (itself excluded),
and the score is the fraction classified correctly:

    acc = 1/N sum_i [ argmax_c sum_{j in kNN(i), j != i} w_ij [y_j = c]  ==  y_i ],

with w_ij = 1 (majority vote) or w_ij = exp(cos(x_i, x_j) / T) (similarity-weighted vote,
Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
CVPR 2018, eq. 7; the repository's online kNN monitor uses the same vote). A tie between
classes goes to the one whose tied voters are more similar in total, so the prediction does
not depend on how the classes are numbered.
"""

import numpy as np

from downstream.transferability._checks import features_and_classes, is_integer, is_positive_number, require_option

WEIGHTINGS = ("majority", "similarity")

#: Queries scored at once: the similarity block is CHUNK x N.
_CHUNK = 1024


def knn_loo_accuracy(features, labels, k: int = 20, weighting: str = "majority", temperature: float = 0.07) -> float:
    """Leave-one-out accuracy in [0, 1] of a k-NN classifier with cosine similarity."""
    features, classes, sizes = features_and_classes(features, labels, "knn_loo")
    count = len(features)
    require_option(is_integer(k) and 1 <= k < count, "knn_loo", "k", k, f"an integer in [1, N - 1] = [1, {count - 1}]")
    require_option(weighting in WEIGHTINGS, "knn_loo", "weighting", weighting, f"one of {WEIGHTINGS}")
    require_option(is_positive_number(temperature), "knn_loo", "temperature", temperature, "a finite number > 0")
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    directions = features / np.where(norms > 0, norms, 1.0)
    correct = 0
    for start in range(0, count, _CHUNK):
        queries = np.arange(start, min(start + _CHUNK, count))
        similarity = directions[queries] @ directions.T
        similarity[np.arange(len(queries)), queries] = -np.inf
        neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        neighbour_similarity = np.take_along_axis(similarity, neighbours, axis=1)
        if weighting == "majority":
            weights = np.ones_like(neighbour_similarity)
        else:
            nearest = neighbour_similarity.max(axis=1, keepdims=True)
            weights = np.exp((neighbour_similarity - nearest) / temperature)
        votes = np.zeros((len(queries), len(sizes)))
        tie_breaker = np.zeros((len(queries), len(sizes)))
        rows = np.repeat(np.arange(len(queries)), k)
        np.add.at(votes, (rows, classes[neighbours].ravel()), weights.ravel())
        np.add.at(tie_breaker, (rows, classes[neighbours].ravel()), neighbour_similarity.ravel())
        tied = votes == votes.max(axis=1, keepdims=True)
        predictions = np.where(tied, tie_breaker, -np.inf).argmax(axis=1)
        correct += int((predictions == classes[queries]).sum())
    return correct / count
