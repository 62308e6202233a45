"""Momentum (exponential moving average) encoders: MoCo eq. (2), seed 002 eq. (6.13).

theta_k <- m * theta_k + (1 - m) * theta_q
"""

import math

import torch
from torch import nn


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move every parameter of ``target`` towards ``online``'s: ``t <- m t + (1 - m) o``."""
    for target_param, online_param in zip(target.parameters(), online.parameters(), strict=True):
        target_param.mul_(momentum).add_(online_param.detach(), alpha=1.0 - momentum)


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """Momentum rising from ``base`` at step 0 to 1 at ``total_steps`` along a half cosine (BYOL, solo-learn)."""
    progress = min(1.0, step / max(1, total_steps))
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
