"""Losses and estimators as plain ``nn.Module``s: no Lightning inside, each tested alone."""

from selfsup.losses.nt_xent import NTXentLoss

__all__ = ["NTXentLoss"]
