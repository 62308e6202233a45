"""BYOL's regression loss: the normalised mean squared error between prediction and target.

Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, eq. (2):

    L(p, z') = || p / ||p|| - z' / ||z'|| ||^2 = 2 - 2 * <p, z'> / (||p|| ||z'||)

p is the online network's prediction of one view, z' the target network's projection of the
other, a constant (no gradient reaches the target). The loss lies in [0, 4]: 0 when the two
point the same way, 2 when orthogonal, 4 when opposite. Rows are normalised by
:func:`selfsup.losses.nt_xent.unit_rows`, so huge and tiny norms stay exact; a zero row
counts as orthogonal to everything (loss 2). No quantity crosses ranks: each rank's loss is
the mean over its own images and DDP averages the gradients.
"""

import torch

from selfsup.losses.nt_xent import unit_rows


def normalized_mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mean over rows of ``2 - 2 cos(p_i, z'_i)``; ``targets`` are detached.

    Args:
        predictions: ``(N, D)``, the online predictions p.
        targets: ``(N, D)``, the target projections z' of the other view.
    """
    if predictions.shape != targets.shape or predictions.ndim != 2:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} must be (N, D)")
    cosines = (unit_rows(predictions) * unit_rows(targets.detach())).sum(dim=1)
    return (2 - 2 * cosines).mean()
