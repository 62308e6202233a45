"""Losses and estimators as plain ``nn.Module``s: no Lightning inside, each tested alone."""

from selfsup.losses.info_nce import InfoNCELoss
from selfsup.losses.nt_xent import NTXentLoss

__all__ = ["InfoNCELoss", "NTXentLoss"]
