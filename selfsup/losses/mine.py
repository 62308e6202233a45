"""MINE: mutual information neural estimation (Belghazi et al., ICML 2018).

A critic T(x, z) is trained to maximise the Donsker-Varadhan bound (textbook eq. 6.8)

    I(X; Z) >= E_P[T] - log E_Q[e^T],

where the pairs from P are the samples as given and the pairs from Q (the product of
the marginals) pair each x with the z of another sample. The gradient is MINE's
bias-corrected one (see :class:`MutualInformationLoss`).

Use it on its own, with any optimiser over its parameters::

    mine = MINE(x_dim, z_dim)
    loss, estimate = mine(x, z)      # a training step: minimise loss
    mine.estimate(x_all, z_all)      # the bound on a (large) held-out sample
"""

import torch
from torch import nn

from selfsup.losses.mutual_information import MutualInformationLoss, donsker_varadhan_mi


class ConcatCritic(nn.Module):
    """T(x, z) = MLP([x, z]): a critic that can model any dependence between x and z."""

    def __init__(self, x_dim: int, z_dim: int, hidden_dim: int = 128, num_hidden: int = 2) -> None:
        super().__init__()
        layers, width = [], x_dim + z_dim
        for _ in range(num_hidden):
            layers += [nn.Linear(width, hidden_dim), nn.ReLU()]
            width = hidden_dim
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, z], dim=-1)).squeeze(-1)


class MINE(nn.Module):
    def __init__(self, x_dim: int, z_dim: int, hidden_dim: int = 128, ema_rate: float = 0.01) -> None:
        super().__init__()
        self.critic = ConcatCritic(x_dim, z_dim, hidden_dim)
        self.donsker_varadhan = MutualInformationLoss("dv", ema_rate)

    def scores(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Critic scores on the joint pairs and on pairs with z shuffled across the samples."""
        shuffled = z[torch.randperm(z.shape[0], device=z.device)]
        return self.critic(x, z), self.critic(x, shuffled)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, estimate)`` on a mini-batch of paired samples ``x`` (N, x_dim), ``z`` (N, z_dim)."""
        return self.donsker_varadhan(*self.scores(x, z))

    @torch.no_grad()
    def estimate(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The Donsker-Varadhan bound, in nats, with the current critic on the samples ``(x, z)``."""
        return donsker_varadhan_mi(*self.scores(x, z))
