"""CPC's InfoNCE over a grid of patch encodings.

van den Oord, Li & Vinyals, "Representation Learning with Contrastive Predictive
Coding", 2018, eq. (4); textbook: Matsui & Kumagai, *Transfer Learning*, §6.2.3. For a
context ``c_{i,j}`` and a prediction step ``k``, the log-bilinear score of a candidate
encoding ``z_l`` is ``f_k(z_l, c_{i,j}) = exp(z_l^T W_k c_{i,j}) = exp(z_l . zhat_{i+k,j})``
and

    L_k = -E [ log  f_k(z_{i+k,j}, c_{i,j})  /  sum_{l in candidates} f_k(z_l, c_{i,j}) ]

over every context position whose target row ``i + k`` lies on the grid. The candidates
are every patch encoding of the batch (CPC v2, Hénaff et al. 2020, appendix A.2): the
positive ``z_{i+k,j}``, the other positions of the same image and all positions of the
other images, gathered from every rank with gradients (:func:`selfsup.distributed.gather_with_grad`)
so the set is the global batch and the loss equals the single-process loss on it.

With ``N`` candidates, ``log N - L_k`` is a lower bound on the mutual information
``I(z_{i+k,j}; c_{i,j})`` (eq. 5 of the paper); it can never exceed ``log N``. Scores are
computed in float32 with autocast off: unnormalised dot products overflow float16.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.distributed import gather_with_grad, rank


def positive_indices(batch: int, rows: int, cols: int, step: int, first: int = 0, device=None) -> torch.Tensor:
    """Where ``z_{b,i+k,j}`` sits in the flattened ``(b, row, col)`` candidates, for the queries ``i < rows - k``.

    Queries are ordered ``(b, i, j)`` row-major; ``first`` is this rank's first candidate.
    """
    b = torch.arange(batch, device=device)[:, None, None]
    i = torch.arange(rows - step, device=device)[None, :, None]
    j = torch.arange(cols, device=device)[None, None, :]
    return (first + b * rows * cols + (i + step) * cols + j).flatten()


def cpc_logits(
    predictions: torch.Tensor, candidates: torch.Tensor, step: int, first: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``z_l . zhat`` of every query against every candidate, and the index of each query's positive.

    Args:
        predictions: ``(B, rows, cols, D)``, ``zhat_{i+k,j} = W_k c_{i,j}`` at every position;
            the last ``step`` rows have no target and are left out.
        candidates: ``(N, D)``, the flattened ``(b, row, col)`` encodings of every rank.
        step: ``k >= 1``, the rows between a context and its target.
        first: index in ``candidates`` of this rank's first encoding.
    Returns:
        ``(B * (rows - k) * cols, N)`` float32 scores and the ``(B * (rows - k) * cols,)`` positives.
    """
    batch, rows, cols, dim = predictions.shape
    if not 1 <= step < rows:
        raise ValueError(f"a prediction step must lie in [1, {rows - 1}] on a grid of {rows} rows, got {step}")
    queries = predictions[:, : rows - step].reshape(-1, dim)
    with torch.autocast(device_type=predictions.device.type, enabled=False):
        logits = queries.float() @ candidates.float().T
    return logits, positive_indices(batch, rows, cols, step, first, device=predictions.device)


def gather_candidates(targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Every rank's ``(B, rows, cols, D)`` encodings as ``(N, D)`` rows (with gradient), and this rank's first row."""
    local = targets.reshape(-1, targets.shape[-1])
    return gather_with_grad(local), rank() * local.shape[0]


def cpc_info_nce(predictions: torch.Tensor, targets: torch.Tensor, step: int) -> torch.Tensor:
    """Eq. (4) for one step ``k``: the mean over queries of ``-log softmax`` of the positive among all candidates.

    ``predictions`` and ``targets`` are ``(B, rows, cols, D)``: ``W_k c`` and ``z`` on the same grid.
    """
    candidates, first = gather_candidates(targets)
    logits, positives = cpc_logits(predictions, candidates, step, first)
    return F.cross_entropy(logits, positives)


class CPCLoss(nn.Module):
    """InfoNCE for each prediction step, averaged over the steps.

    The paper sums the steps; the mean differs by the constant factor ``len(steps)`` and keeps
    the loss on the scale of one InfoNCE, so ``log N - loss`` reads as an MI estimate.
    """

    def __init__(self, steps: Sequence[int]) -> None:
        super().__init__()
        steps = tuple(int(step) for step in steps)
        if not steps or min(steps) < 1 or len(set(steps)) != len(steps):
            raise ValueError(f"CPC needs distinct prediction steps >= 1, got {steps}")
        self.steps = steps

    def forward(
        self, predictions: Sequence[torch.Tensor], targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The mean loss over steps and, per step ``k``, detached ``loss_k``, ``acc_k`` (top-1) and ``mi_k``.

        Args:
            predictions: one ``(B, rows, cols, D)`` tensor ``W_k c`` per step, in the order of ``steps``.
            targets: ``(B, rows, cols, D)``, the patch encodings ``z``.
        """
        if len(predictions) != len(self.steps):
            raise ValueError(f"{len(self.steps)} prediction steps need as many predictions, got {len(predictions)}")
        candidates, first = gather_candidates(targets)
        log_candidates = math.log(candidates.shape[0])
        losses, logs = [], {}
        for step, prediction in zip(self.steps, predictions):
            logits, positives = cpc_logits(prediction, candidates, step, first)
            loss = F.cross_entropy(logits, positives)
            losses.append(loss)
            logs[f"loss_k{step}"] = loss.detach()
            logs[f"acc_k{step}"] = (logits.detach().argmax(dim=1) == positives).float().mean()
            logs[f"mi_k{step}"] = log_candidates - loss.detach()
        return torch.stack(losses).mean(), logs


def mutual_information_bound(loss: torch.Tensor | float, num_candidates: int) -> torch.Tensor | float:
    """The InfoNCE estimate ``log N - L``, a lower bound on the mutual information (eq. 5)."""
    return math.log(num_candidates) - loss
