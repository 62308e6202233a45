"""Losses and estimators as plain ``nn.Module``s and functions: no Lightning inside, each tested alone."""

from selfsup.losses.cpc import CPCLoss, cpc_info_nce
from selfsup.losses.info_nce import InfoNCELoss
from selfsup.losses.mine import MINE, ConcatCritic
from selfsup.losses.mutual_information import (
    MutualInformationLoss,
    donsker_varadhan_mi,
    info_nce_mi,
    jensen_shannon_mi,
    split_scores,
)
from selfsup.losses.nt_xent import NTXentLoss

__all__ = [
    "CPCLoss",
    "MINE",
    "ConcatCritic",
    "InfoNCELoss",
    "MutualInformationLoss",
    "NTXentLoss",
    "cpc_info_nce",
    "donsker_varadhan_mi",
    "info_nce_mi",
    "jensen_shannon_mi",
    "split_scores",
]
