"""Feature standardisation: each feature minus its training mean, divided by its deviation.

A fixed affine map fitted once on the training features and applied to training and
test features alike (the same on every rank). Both linear probes use it: the L-BFGS
logistic regression (``logistic.standardize``) and the SGD probe (``linear.standardize``).
"""

import torch
from torch import nn


class Standardization(nn.Module):
    """``(features - mean) / std``, with ``std`` clamped at 1e-6 so a constant feature maps to 0."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clamp_min(1e-6))

    @classmethod
    def fit(cls, features: torch.Tensor) -> "Standardization":
        """The per-feature mean and (sample) deviation of ``features``, ``(N, D)``."""
        features = features.float()
        return cls(features.mean(dim=0), features.std(dim=0))

    @classmethod
    def identity(cls, dim: int) -> "Standardization":
        return cls(torch.zeros(dim), torch.ones(dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std
