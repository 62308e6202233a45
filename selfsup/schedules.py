"""Every schedule of the project, as pure functions of the step.

* :func:`scaled_learning_rate`: the peak learning rate for a global batch size;
* :func:`warmup_cosine`: per-step linear warm-up, then a half cosine (pretraining;
  with no warm-up, the cosine schedule of the downstream probes and fine-tuning);
* :func:`step_decay`: divide by 10 at given fractions of training (MoCo's linear probe);
* :func:`cosine_momentum`: an EMA momentum rising to 1 along a half cosine (BYOL, MoCo v3);
* :func:`cosine_between`: any value moving from a start to an end along a half cosine
  (DINO's weight decay, 0.04 -> 0.4).

Learning-rate functions return a multiplier of the peak rate, ready for
``torch.optim.lr_scheduler.LambdaLR``.
"""

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


def step_decay(step: int, total_steps: int, milestones: tuple[float, ...] = (0.6, 0.8), factor: float = 0.1) -> float:
    """Multiplier ``factor ** k`` after the k-th milestone (a fraction of ``total_steps``) has passed."""
    return factor ** sum(step >= fraction * total_steps for fraction in milestones)


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """Momentum rising from ``base`` at step 0 to 1 at ``total_steps`` along a half cosine (BYOL, solo-learn)."""
    progress = min(1.0, step / max(1, total_steps))
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def cosine_between(step: int, total_steps: int, start: float, end: float) -> float:
    """``start`` at step 0, ``end`` from ``total_steps`` on, along a half cosine (DINO's ``cosine_scheduler``)."""
    progress = min(1.0, step / max(1, total_steps))
    return end + (start - end) * (math.cos(math.pi * progress) + 1.0) / 2.0
