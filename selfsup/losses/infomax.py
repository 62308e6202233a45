"""One Deep InfoMax term: MI between paired embeddings, the rest of the batch as negatives.

Hjelm et al., "Learning deep representations by mutual information estimation and
maximization", ICLR 2019, with the separable ("encode-and-dot-product") critic of
appendix A.2: T(x_i, y_j) = a(x_i) . b(y_j). The encodings ``b(y)`` are gathered from
every rank with their gradient, so under DDP each query is scored against the global
vectors of the *whole* global batch and the positive column is offset by the rank:
for JSD and InfoNCE the loss and its gradient equal those of one process holding the
whole batch (for DV, the log term is taken over this rank's rows, against all ranks'
columns, and the moving average is rank 0's, which DDP broadcasts with the buffers).
"""

import torch
from torch import nn

from selfsup.distributed import gather_with_grad, rank
from selfsup.losses.mutual_information import Estimator, MutualInformationLoss, split_scores


class InfoMaxLoss(nn.Module):
    def __init__(self, estimator: Estimator = "infonce", ema_rate: float = 0.01) -> None:
        super().__init__()
        self.estimator = MutualInformationLoss(estimator, ema_rate)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, estimate)`` for ``queries`` (N, D) or (N, L, D) at L locations and ``keys`` (N, D).

        ``queries[i]`` and ``keys[i]`` come from the same image (a pair from the joint);
        with locations, the estimate is the average over locations of eq. 6.9.
        """
        all_keys = gather_with_grad(keys)
        scores = queries @ all_keys.T
        if scores.dim() == 3:
            scores = scores.transpose(0, 1)
        positive_columns = rank() * keys.shape[0] + torch.arange(keys.shape[0], device=keys.device)
        return self.estimator(*split_scores(scores, positive_columns))
