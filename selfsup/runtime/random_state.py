"""The random-number streams of a run, as checkpoint content.

Lightning restores weights, optimiser, scheduler and loop counters, but not the
global generators of torch, NumPy and Python that draw the data order (the
sampler's seed), the augmentations, the DataLoader workers' seeds and MoCo's
Shuffle-BN permutation. Without them a resumed run sees other batches than the
uninterrupted one. The state is stored as tensors and plain Python values, so it
loads with ``torch.load(weights_only=True)``.
"""

import random

import numpy as np
import pytorch_lightning as pl
import torch

from selfsup.checkpoints import RANDOM_STATES_KEY
from selfsup.distributed import all_gather_objects, rank


class RandomStateCheckpoint(pl.Callback):
    """Every rank's generators in every checkpoint, restored with the weights on resume.

    Restoring happens when Lightning loads the checkpoint, before the resumed run builds
    its first training iterator, so that iterator draws what the uninterrupted run drew.
    A checkpoint written by N ranks restores rank r from entry r mod N.
    """

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint[RANDOM_STATES_KEY] = all_gather_objects(capture())

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        states = checkpoint.get(RANDOM_STATES_KEY)
        if states:
            restore(states[rank() % len(states)])


def capture() -> dict:
    """The current state of every global generator on this process."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": _tuples_to_lists(random.getstate()),
    }


def restore(state: dict) -> None:
    """Put every generator back where :func:`capture` found it."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _tuples_to_lists(value):
    if isinstance(value, tuple):
        return [_tuples_to_lists(item) for item in value]
    return value
