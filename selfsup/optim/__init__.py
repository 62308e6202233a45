"""Optimisers and parameter groups for pretraining (schedules live in :mod:`selfsup.schedules`)."""

from selfsup.optim.lars import LARS
from selfsup.optim.param_groups import decay_groups

__all__ = ["LARS", "decay_groups"]
