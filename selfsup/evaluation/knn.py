"""Weighted k-nearest-neighbour classification on L2-normalised features.

Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination", CVPR 2018, eq. (7): each of the k nearest training features votes
for its class with weight exp(cos / temperature).

The weights are computed relative to each query's nearest neighbour,
exp((cos - cos_max) / temperature), which leaves every vote's ratio, and so the
prediction, unchanged, but cannot overflow: at temperature 0.01 the plain exp(cos / T)
is e^100, beyond float32, and every neighbour would weigh infinity.
"""

import torch
import torch.nn.functional as F


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
    """Predicted class of every query, ``(Q,)``; queries are scored ``chunk_size`` at a time."""
    if k < 1 or temperature <= 0:
        raise ValueError(f"kNN needs k >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    bank = F.normalize(bank_features.float(), dim=1)
    k = min(k, bank.shape[0])
    predictions = []
    for queries in F.normalize(query_features.float(), dim=1).split(chunk_size):
        similarity, neighbour = (queries @ bank.T).topk(k, dim=1)
        weights = ((similarity - similarity[:, :1]) / temperature).exp()
        votes = torch.zeros(queries.shape[0], num_classes, device=queries.device)
        votes.scatter_add_(1, bank_labels[neighbour], weights)
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)
