"""AMDIM's NCE between a source vector and every location of a target map, across scales and views.

Bachman, Hjelm & Buchwalter, "Learning Representations by Maximizing Mutual Information
Across Views", NeurIPS 2019, §3.1-3.3 (eqs. 3-5); textbook: Matsui & Kumagai, *Transfer
Learning*, ch. 6, §6.2.3. For a source feature ``s_i`` of image i in one view (the global
1x1 vector, or one location of a local map) and the target map ``t_j`` of image j in the
other view (``L`` locations), the critic is a dot product scaled by the width ``d``, soft-
clipped by tanh (the paper's ``tclip`` c = 20):

    raw_{i,j,l} = s_i . t_{j,l} / sqrt(d)
    phi_{i,j,l} = c * tanh(raw_{i,j,l} / c)

and for every location ``l`` of image i's own map the NCE loss is a softmax over one
positive and all locations of the other images, the negatives (eq. 3)::

    NCE_{i,l} = -log  exp(phi_{i,i,l})  /  ( exp(phi_{i,i,l}) + sum_{j != i} sum_{l'} exp(phi_{i,j,l'}) )

averaged over i and l. The other locations of image i's own map are neither positive nor
negative. Beside the clipping, the paper regularises the raw scores with a penalty
``lambda * mean(raw^2)`` over every score (``lgt_reg``; lambda = 5e-2 in the public code).
With ``N`` candidates per positive, ``1 + (B - 1) L`` for a global batch of B images,
``log N - NCE`` is the InfoNCE lower bound on the mutual information; it never exceeds
``log N``, and the clipping keeps it below ``log N - log(1 + (N - 1) e^{-2c})``.

The target maps are gathered from every rank with their gradient
(:func:`selfsup.distributed.gather_with_grad`), so the negatives are the whole global batch
and each rank's loss is the single-process loss of its own sources. Scores are computed in
float32 (float64 for float64 inputs) with autocast off. The sources and targets are the
outputs of the method's separable critics (the paper's "fake RKHS" embeddings), so one
matrix product scores every pair.
"""

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.distributed import gather_with_grad, rank
from selfsup.errors import ConfigurationError, is_finite


def tanh_clip(scores: torch.Tensor, clip: float) -> torch.Tensor:
    """``c * tanh(scores / c)``: about the identity near 0, never beyond ``±c``."""
    return clip * torch.tanh(scores / clip)


def clipped_nce(
    sources: torch.Tensor, targets: torch.Tensor, clip: float, first: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """NCE of ``sources`` against every location of ``targets``, with tanh-clipped scores.

    Args:
        sources: ``(n, d)``, this rank's source vectors, one per image.
        targets: ``(B, L, d)``, the target maps of every image of the global batch, flattened.
        clip: c of the soft clip ``c * tanh(raw / c)``.
        first: index in ``targets`` of the image of ``sources[0]`` (this rank's offset).
    Returns:
        The NCE loss (mean over the n x L positives), the mean of the squared raw scores over
        all ``n x B x L`` pairs (the penalty before its weight), and the candidates per positive.
    """
    n, dim = sources.shape
    batch, locations = targets.shape[:2]
    dtype = torch.promote_types(torch.promote_types(sources.dtype, targets.dtype), torch.float32)
    with torch.autocast(device_type=sources.device.type, enabled=False):
        raw = torch.einsum("nd,bld->nbl", sources.to(dtype), targets.to(dtype)) / math.sqrt(dim)
    squared = raw.square().mean()
    scores = tanh_clip(raw, clip)
    own = F.one_hot(first + torch.arange(n, device=sources.device), batch).bool()  # (n, B)
    positive = scores[own]  # (n, L): image i's own map
    negative = scores[~own].reshape(n, (batch - 1) * locations)  # every location of the other images
    log_denominator = torch.logaddexp(positive, torch.logsumexp(negative, dim=1, keepdim=True))
    return (log_denominator - positive).mean(), squared, 1 + (batch - 1) * locations


class AMDIMLoss(nn.Module):
    """The sum over pairings of the view-symmetric clipped NCE plus the score penalty.

    ``pairings`` maps a name to ``(source scale, target scale)``, e.g. the paper's
    ``{"1t5": ("global", "coarse"), "1t7": ("global", "fine"), "5t5": ("coarse", "coarse")}``.
    Each pairing's loss is ``1/2 [NCE(s(x1) -> t(x2)) + NCE(s(x2) -> t(x1))] + lambda/2 [pen12 + pen21]``,
    and the loss is the sum over pairings, as the public code adds ``g2l_1t5 + g2l_1t7 + g2l_5t5 + lgt_reg``.
    """

    def __init__(
        self, pairings: Mapping[str, tuple[str, str]], clip: float = 20.0, penalty_weight: float = 5e-2
    ) -> None:
        super().__init__()
        if not pairings:
            raise ConfigurationError("AMDIM's loss needs at least one (source, target) pairing.")
        if not (is_finite(clip) and clip > 0):
            raise ConfigurationError(f"the tanh clip of AMDIM's scores must be a finite number > 0, got {clip!r}.")
        if not (is_finite(penalty_weight) and penalty_weight >= 0):
            raise ConfigurationError(f"AMDIM's score penalty must be a finite number >= 0, got {penalty_weight!r}.")
        self.pairings = {name: (str(source), str(target)) for name, (source, target) in pairings.items()}
        self.clip = float(clip)
        self.penalty_weight = float(penalty_weight)

    def forward(
        self,
        sources: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
        targets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss and detached logs ``nce_<name>``, ``mi_<name>`` (``log N - NCE``) and ``score_penalty``.

        Args:
            sources: per scale, the ``(n, d)`` source vectors of view 1 and of view 2.
            targets: per scale, the ``(n, L, d)`` target maps of view 1 and of view 2 (this rank's images).

        Every rank must hold the same number n of images (the training loader drops the last
        incomplete batch), so rank r's images are rows ``r n .. r n + n - 1`` of the gathered maps.
        """
        # In the pairings' order on every rank (a set's order of strings varies between processes).
        needed = dict.fromkeys(target for _, target in self.pairings.values())
        gathered = {scale: tuple(gather_with_grad(view) for view in targets[scale]) for scale in needed}
        first = rank() * next(iter(sources.values()))[0].shape[0]
        loss, penalty, logs = 0.0, 0.0, {}
        for name, (source, target) in self.pairings.items():
            (source_1, source_2), (target_1, target_2) = sources[source], gathered[target]
            nce_12, squared_12, candidates = clipped_nce(source_1, target_2, self.clip, first)
            nce_21, squared_21, _ = clipped_nce(source_2, target_1, self.clip, first)
            nce = (nce_12 + nce_21) / 2
            pairing_penalty = self.penalty_weight * (squared_12 + squared_21) / 2
            loss = loss + nce + pairing_penalty
            penalty = penalty + pairing_penalty.detach()
            logs[f"nce_{name}"] = nce.detach()
            logs[f"mi_{name}"] = math.log(candidates) - nce.detach()
        logs["score_penalty"] = penalty
        return loss, logs
