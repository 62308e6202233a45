"""Learning-rate rules: batch-size scaling and the per-step warm-up + cosine schedule."""

import math


def scaled_learning_rate(base_lr: float, global_batch_size: int, rule: str, reference_batch_size: int = 256) -> float:
    """``base_lr`` scaled to the global batch size.

    ``linear``: base_lr * B / reference (Goyal et al. 2017; SimCLR's 0.3 x B/256);
    ``sqrt``: base_lr * sqrt(B / reference) (SimCLR's 0.075 x sqrt(B) with reference 1);
    ``none``: base_lr unchanged.
    """
    ratio = global_batch_size / reference_batch_size
    if rule == "linear":
        return base_lr * ratio
    if rule == "sqrt":
        return base_lr * math.sqrt(ratio)
    if rule == "none":
        return base_lr
    raise ValueError(f"unknown learning-rate scaling rule {rule!r}; use 'linear', 'sqrt' or 'none'")


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, final_fraction: float = 0.0) -> float:
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based).

    Rises linearly from 1/warmup_steps to 1 over ``warmup_steps`` steps, then decays
    along a half cosine to ``final_fraction`` at ``total_steps``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))
