"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
ICML 2020, eq. (1); textbook eq. (6.14):

    l(i, j) = -log  exp(sim(z_i, z_j) / tau)  /  sum_{k != i} exp(sim(z_i, z_k) / tau)

over the 2N views of a batch, where (i, j) are the two views of one image and the
other 2(N - 1) views are the negatives. The loss is the mean over all 2N anchors.
"""

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.distributed import gather_with_grad, rank, world_size
from selfsup.errors import ConfigurationError, is_finite


def unit_rows(rows: torch.Tensor) -> torch.Tensor:
    """The rows L2-normalised in float32, for every finite norm; zero rows stay zero.

    ``F.normalize`` alone squares the entries: norms beyond ~1e19 overflow (the rows come
    back zero) and norms below its eps of 1e-12 are not normalised. Dividing each row by
    its largest entry first (a constant for autograd, which does not change the direction)
    keeps the norm in [1, sqrt(D)].
    """
    rows = rows.float()
    largest = rows.detach().abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    return F.normalize(rows / largest, dim=1)


class NTXentLoss(nn.Module):
    """NT-Xent over two batches of views; negatives come from every rank.

    Under ``torch.distributed`` each rank scores its own anchors against the views of
    all ranks, gathered *with* gradients, so the loss equals the single-process loss
    on the concatenated global batch. The positive of local anchor ``i`` sits at
    column ``rank * N + i`` of the gathered views.

    Similarities are computed in float32 whatever the input precision: at low
    temperature ``exp(1 / tau)`` overflows float16.
    """

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__()
        if not (is_finite(temperature) and temperature > 0):
            raise ConfigurationError(
                f"NT-Xent temperature must be a finite number > 0, got {temperature}; the papers use 0.1 to 0.5."
            )
        self.temperature = temperature

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """Return the mean loss for views ``z_a[i]`` and ``z_b[i]`` of image ``i``, both (N, D)."""
        if z_a.shape != z_b.shape:
            raise ValueError(f"the two views must have equal shapes, got {tuple(z_a.shape)} and {tuple(z_b.shape)}")
        batch_size = z_a.shape[0]
        if batch_size * world_size() < 2:
            raise ConfigurationError(
                "NT-Xent needs at least 2 images per batch (the other images are its negatives); "
                f"got {batch_size}: raise data.batch_size."
            )
        z_a, z_b = unit_rows(z_a), unit_rows(z_b)
        all_a = gather_with_grad(z_a)
        all_b = gather_with_grad(z_b)

        positives = torch.arange(batch_size, device=z_a.device) + rank() * batch_size
        is_self = F.one_hot(positives, num_classes=all_a.shape[0]).bool()

        logits_a = torch.cat([z_a @ all_b.T, (z_a @ all_a.T).masked_fill(is_self, float("-inf"))], dim=1)
        logits_b = torch.cat([z_b @ all_a.T, (z_b @ all_b.T).masked_fill(is_self, float("-inf"))], dim=1)
        logits = torch.cat([logits_a, logits_b]) / self.temperature
        return F.cross_entropy(logits, torch.cat([positives, positives]))
