"""Parameter groups that keep weight decay and LARS off biases and norm layers."""

from torch import nn


def decay_groups(module: nn.Module, weight_decay: float, exclude_bias_and_norm: bool = True) -> list[dict]:
    """Split ``module``'s trainable parameters into a decayed group and an excluded one.

    One-dimensional parameters (biases, batch-norm scales and shifts) go to the
    excluded group: no weight decay, no LARS adaptation (SimCLR, appendix B.1).
    """
    decayed, excluded = [], []
    for param in module.parameters():
        if not param.requires_grad:
            continue
        (excluded if exclude_bias_and_norm and param.ndim <= 1 else decayed).append(param)
    groups = [{"params": decayed, "weight_decay": weight_decay}]
    if excluded:
        groups.append({"params": excluded, "weight_decay": 0.0, "exclude_from_lars": True})
    return groups
