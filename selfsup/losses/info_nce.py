"""InfoNCE against a set of negative keys, the loss of MoCo.

He et al., "Momentum Contrast for Unsupervised Visual Representation Learning",
CVPR 2020, eq. (1); textbook eq. (6.12):

    L_q = -log  exp(q . k+ / tau)  /  ( exp(q . k+ / tau) + sum_{k in queue} exp(q . k / tau) )

Queries and keys are L2-normalised here, so the dot products are cosines.
"""

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.errors import ConfigurationError, is_finite
from selfsup.losses.nt_xent import unit_rows


class InfoNCELoss(nn.Module):
    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        if not (is_finite(temperature) and temperature > 0):
            raise ConfigurationError(
                f"InfoNCE temperature must be a finite number > 0, got {temperature}; MoCo uses 0.07 (v1) or 0.2 (v2)."
            )
        self.temperature = temperature

    def forward(self, queries: torch.Tensor, positive_keys: torch.Tensor, negative_keys: torch.Tensor) -> torch.Tensor:
        """Mean loss of ``queries`` (N, D) with their ``positive_keys`` (N, D) against ``negative_keys`` (K, D)."""
        queries, positive_keys, negative_keys = map(unit_rows, (queries, positive_keys, negative_keys))
        positive = (queries * positive_keys).sum(dim=1, keepdim=True)
        negative = queries @ negative_keys.T
        logits = torch.cat([positive, negative], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(queries), dtype=torch.long, device=queries.device))
