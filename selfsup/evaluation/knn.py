"""Weighted k-nearest-neighbour classification on L2-normalised features.

Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination", CVPR 2018, eq. (7): each of the k nearest training features votes
for its class with weight exp(cos / temperature).

The weights are computed relative to each query's nearest neighbour,
exp((cos - cos_max) / temperature), which leaves every vote's ratio, and so the
prediction, unchanged, but cannot overflow: at temperature 0.01 the plain exp(cos / T)
is e^100, beyond float32, and every neighbour would weigh infinity. Features are
normalised without squaring their raw entries, so any finite norm works.
"""

import math

import torch

from selfsup.errors import ConfigurationError
from selfsup.losses.nt_xent import unit_rows


def non_finite_rows(features: torch.Tensor) -> int:
    """How many rows of ``features`` hold a NaN or an infinity."""
    return int((~torch.isfinite(features)).flatten(1).any(dim=1).sum())


@torch.no_grad()
def weighted_knn_predict(
    bank_features: torch.Tensor,
    bank_labels: torch.Tensor,
    query_features: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Predicted class of every query, ``(Q,)``; queries are scored ``chunk_size`` at a time.

    A ``k`` larger than the bank is clamped to the bank's size: every bank row votes.
    A tied vote goes to the lowest class index. An empty bank, bank labels outside
    ``[0, num_classes)`` and NaN or infinite features (a NaN row would be every query's
    nearest neighbour, and cast a vote) raise :class:`ConfigurationError`.
    """
    if not (k >= 1 and temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"kNN needs k >= 1 and a finite temperature > 0, got k={k}, temperature={temperature}")
    if len(bank_features) == 0:
        raise ConfigurationError("kNN needs a bank of labelled features, but the bank is empty.")
    if len(bank_labels) and not (0 <= int(bank_labels.min()) and int(bank_labels.max()) < num_classes):
        raise ConfigurationError(
            f"kNN bank labels must lie in [0, {num_classes}), got labels from {int(bank_labels.min())} "
            f"to {int(bank_labels.max())}: unlabelled rows (-1) must be left out of the bank."
        )
    bad_bank, bad_queries = non_finite_rows(bank_features), non_finite_rows(query_features)
    if bad_bank or bad_queries:
        raise ConfigurationError(
            f"kNN needs finite features, but {bad_bank} of {len(bank_features)} bank rows and {bad_queries} of "
            f"{len(query_features)} query rows are NaN or infinite: the backbone has diverged."
        )
    bank = unit_rows(bank_features)
    k = min(k, bank.shape[0])
    predictions = []
    for queries in unit_rows(query_features).split(chunk_size):
        similarity, neighbour = (queries @ bank.T).topk(k, dim=1)
        weights = ((similarity - similarity[:, :1]) / temperature).exp()
        votes = torch.zeros(queries.shape[0], num_classes, device=queries.device)
        votes.scatter_add_(1, bank_labels[neighbour], weights)
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)
