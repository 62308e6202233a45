"""MINE recovers the closed-form mutual information of correlated Gaussians."""

import math

import pytest
import torch

from selfsup.losses import MINE


def correlated_gaussians(count: int, dim: int, rho: float, generator: torch.Generator):
    """x, z in R^dim standard normal with corr(x_i, z_i) = rho: I(X; Z) = -(dim/2) ln(1 - rho^2)."""
    x = torch.randn(count, dim, generator=generator)
    z = rho * x + math.sqrt(1 - rho**2) * torch.randn(count, dim, generator=generator)
    return x, z


def train_mine(dim: int, rho: float, steps: int = 2000, batch_size: int = 512) -> float:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    mine = MINE(dim, dim, hidden_dim=128)
    optimizer = torch.optim.Adam(mine.parameters(), lr=1e-3)
    for _ in range(steps):
        loss, _ = mine(*correlated_gaussians(batch_size, dim, rho, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return mine.estimate(*correlated_gaussians(50_000, dim, rho, generator)).item()


@pytest.mark.slow
@pytest.mark.parametrize(("dim", "rho"), [(1, 0.5), (1, 0.9), (5, 0.5), (5, 0.9)])
def test_mine_lands_within_ten_percent_of_the_closed_form(dim, rho):
    truth = -dim / 2 * math.log(1 - rho**2)
    assert train_mine(dim, rho) == pytest.approx(truth, rel=0.10)


def test_mine_estimates_near_zero_for_independent_samples_of_different_sizes():
    torch.manual_seed(0)
    mine = MINE(3, 2)
    optimizer = torch.optim.Adam(mine.parameters(), lr=1e-3)
    for _ in range(200):
        loss, _ = mine(torch.randn(256, 3), torch.randn(256, 2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert abs(mine.estimate(torch.randn(20_000, 3), torch.randn(20_000, 2)).item()) < 0.02
