"""Momentum (exponential moving average) encoders: MoCo eq. (2), textbook eq. (6.13).

theta_k <- m * theta_k + (1 - m) * theta_q

The momentum's schedule over training is :func:`selfsup.schedules.cosine_momentum`.
"""

import torch
from torch import nn


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Move every parameter of ``target`` towards ``online``'s: ``t <- m t + (1 - m) o``.

    A frozen online parameter (``requires_grad`` off, e.g. MoCo v3's patch projection) is
    copied: the average of equal values would drift from it by rounding.
    """
    for target_param, online_param in zip(target.parameters(), online.parameters(), strict=True):
        if online_param.requires_grad:
            target_param.mul_(momentum).add_(online_param.detach(), alpha=1.0 - momentum)
        else:
            target_param.copy_(online_param)
