"""MoCo v3's contrastive loss: InfoNCE against the keys of the whole global batch, scaled by 2 tau.

Chen, Xie & He, "An Empirical Study of Training Self-Supervised Vision Transformers",
ICCV 2021, Algorithm 1:

    logits = q @ k.T / tau                     q: this rank's queries, k: every rank's keys
    loss = 2 tau * CrossEntropy(logits, labels)  labels: the index of each query's own key

Queries and keys are L2-normalised, so the dot products are cosines. There is no queue: the
negatives are the keys of the other images of the batch, gathered from every rank (keys come
from the momentum encoder and carry no gradient). Rank r's queries are rows
``r n .. r n + n - 1`` of the gathered keys, so each rank's loss is the single-process loss of
its own queries, and DDP's gradient average equals the single-process gradient on the whole
batch when every rank holds n images. The factor 2 tau (the paper's) makes the gradient's
scale independent of tau. With N = the global batch, the loss lies in [0, 2 tau (ln N + 2 / tau)].
"""

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.distributed import gather, rank, world_size
from selfsup.errors import ConfigurationError, is_finite
from selfsup.losses.nt_xent import unit_rows


class MoCoV3Loss(nn.Module):
    def __init__(self, temperature: float = 0.2) -> None:
        """Args: temperature: tau (the paper: 0.2 for ViT, 1.0 for ResNet-50)."""
        super().__init__()
        if not (is_finite(temperature) and temperature > 0):
            raise ConfigurationError(
                f"MoCo v3's temperature must be a finite number > 0, got {temperature!r}; the paper uses 0.2 (ViT)."
            )
        self.temperature = float(temperature)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """The loss of this rank's ``queries`` (n, D) against the ``keys`` (n, D) of every rank's images."""
        if queries.shape != keys.shape or queries.ndim != 2:
            raise ValueError(f"queries {tuple(queries.shape)} and keys {tuple(keys.shape)} must be (n, D)")
        queries, all_keys = unit_rows(queries), unit_rows(gather(keys.detach()))
        if len(all_keys) != world_size() * len(queries):
            raise ValueError(
                f"every rank must hold the same number of images ({len(queries)} here, {len(all_keys)} in all): "
                "the training loader drops the last incomplete batch"
            )
        logits = queries @ all_keys.T / self.temperature
        labels = rank() * len(queries) + torch.arange(len(queries), device=queries.device)
        return 2 * self.temperature * F.cross_entropy(logits, labels)
