"""Optimisers, parameter groups and learning-rate schedules for pretraining."""

from selfsup.optim.lars import LARS
from selfsup.optim.param_groups import decay_groups
from selfsup.optim.schedule import scaled_learning_rate, warmup_cosine

__all__ = ["LARS", "decay_groups", "scaled_learning_rate", "warmup_cosine"]
