"""Lower bounds on mutual information from critic scores (textbook eqs. 6.6-6.9).

Each estimator takes the critic's scores ``positive`` (..., N) on pairs drawn from the
joint P(X, Z) and ``negative`` (..., N, K) on pairs drawn from the product of the
marginals (K negatives per positive), and returns the estimate in nats. Leading
dimensions (Deep InfoMax's map locations) are averaged over, as eq. 6.9 averages the
local estimates. Maximise the estimate (minimise its negative) to train critic and encoder.

* Jensen-Shannon (Hjelm et al. 2019, eq. 4; Nowozin et al. 2016), softplus form,
  shifted so that the uninformative critic T = 0 gives 0; it never exceeds 2 ln 2.
* Donsker-Varadhan (Belghazi et al. 2018; eq. 6.8): E_P[T] - log E_Q[e^T].
* InfoNCE (van den Oord et al. 2018): never exceeds ln(K + 1).
"""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.errors import ConfigurationError

Estimator = Literal["jsd", "dv", "infonce"]


def jensen_shannon_mi(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """2 ln 2 - E_P[softplus(-T)] - E_Q[softplus(T)]."""
    return 2 * math.log(2) - F.softplus(-positive).mean() - F.softplus(negative).mean()


def donsker_varadhan_mi(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """E_P[T] - log E_Q[exp(T)] over all pairs given, the log-mean-exp computed stably."""
    return positive.mean() - log_mean_exp(negative)


def info_nce_mi(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """E[ T(x, z+) - log( (exp T(x, z+) + sum_k exp T(x, z_k)) / (K + 1) ) ]."""
    scores = torch.cat([positive.unsqueeze(-1), negative], dim=-1)
    return (positive - torch.logsumexp(scores, dim=-1)).mean() + math.log(scores.shape[-1])


def log_mean_exp(scores: torch.Tensor) -> torch.Tensor:
    """log E[exp(T)] over every element of ``scores``."""
    scores = scores.flatten()
    return torch.logsumexp(scores, dim=0) - math.log(scores.numel())


def split_scores(scores: torch.Tensor, positive_columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positives (..., N) and negatives (..., N, M - 1) of a score matrix (..., N, M).

    ``scores[..., i, j]`` is the critic on the i-th x with the j-th z; the pair
    ``(i, positive_columns[i])`` comes from the joint, every other column of row i is a
    negative: the other samples of a batch, as Deep InfoMax and InfoNCE use them.
    """
    rows, columns = scores.shape[-2:]
    positive_mask = F.one_hot(positive_columns, columns).bool()
    positive = scores[..., positive_mask].view(*scores.shape[:-2], rows)
    negative = scores[..., ~positive_mask].view(*scores.shape[:-2], rows, columns - 1)
    return positive, negative


class MutualInformationLoss(nn.Module):
    """Loss and estimate for one of the three bounds, chosen by name.

    ``forward(positive, negative)`` returns ``(loss, estimate)``; the loss's value is
    -estimate. For ``"dv"`` in training mode its gradient is MINE's bias-corrected one
    (Belghazi et al. 2018, sec. 3.2): the mini-batch gradient of log E_Q[e^T] is biased,
    so the gradient of E_Q[e^T] is divided by an exponential moving average of E_Q[e^T]
    (weight ``ema_rate`` on the newest batch; 1 turns the correction off) instead of by
    the batch value. The average is kept in the log domain, in a buffer that a
    checkpoint carries.
    """

    def __init__(self, estimator: Estimator = "jsd", ema_rate: float = 0.01) -> None:
        super().__init__()
        if estimator not in ("jsd", "dv", "infonce"):
            raise ConfigurationError(f"unknown MI estimator {estimator!r}; choose 'jsd', 'dv' or 'infonce'.")
        if not 0 < ema_rate <= 1:
            raise ConfigurationError(f"the DV moving-average rate must lie in (0, 1], got {ema_rate}.")
        self.estimator = estimator
        self.ema_rate = ema_rate
        self.register_buffer("log_mean_exp_average", torch.tensor(float("nan")))

    def forward(self, positive: torch.Tensor, negative: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.estimator == "jsd":
            estimate = jensen_shannon_mi(positive, negative)
            return -estimate, estimate.detach()
        if self.estimator == "infonce":
            estimate = info_nce_mi(positive, negative)
            return -estimate, estimate.detach()
        log_term = log_mean_exp(negative)
        estimate = positive.mean() - log_term
        if not self.training:
            return -estimate, estimate.detach()
        self._update_average(log_term.detach())
        corrected_log_term = torch.exp(log_term - self.log_mean_exp_average)
        # Value: -estimate. Gradient: -(grad E_P[T] - grad E_Q[e^T] / average).
        loss = -(positive.mean() - log_term.detach() - (corrected_log_term - corrected_log_term.detach()))
        return loss, estimate.detach()

    @torch.no_grad()
    def _update_average(self, log_term: torch.Tensor) -> None:
        if torch.isnan(self.log_mean_exp_average):
            self.log_mean_exp_average.copy_(log_term)
        elif self.ema_rate == 1:
            self.log_mean_exp_average.copy_(log_term)
        else:
            self.log_mean_exp_average.copy_(
                torch.logaddexp(
                    self.log_mean_exp_average + math.log1p(-self.ema_rate), log_term + math.log(self.ema_rate)
                )
            )
