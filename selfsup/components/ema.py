"""Momentum (exponential moving average) encoders: MoCo eq. (2), textbook eq. (6.13).

theta_k <- m * theta_k + (1 - m) * theta_q

The momentum's schedule over training is :func:`selfsup.schedules.cosine_momentum`.
"""

import torch
from torch import nn


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move every parameter of ``target`` towards ``online``'s: ``t <- m t + (1 - m) o``."""
    for target_param, online_param in zip(target.parameters(), online.parameters(), strict=True):
        target_param.mul_(momentum).add_(online_param.detach(), alpha=1.0 - momentum)
