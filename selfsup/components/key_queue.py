"""MoCo's dictionary: a first-in first-out queue of encoded keys (He et al. 2020, sec. 3.2).

Both the keys and the write pointer are persistent buffers, so they are saved in
every checkpoint and a resumed run continues with the very same dictionary.
"""

import torch
import torch.nn.functional as F
from torch import nn


class KeyQueue(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"the key queue needs a positive size, got {size}")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest ``len(keys)`` entries by ``keys``, which must divide the queue size."""
        count = keys.shape[0]
        if self.size % count:
            raise ValueError(f"the queue size {self.size} is not a multiple of the {count} keys enqueued per step")
        start = int(self.pointer)
        self.keys[start : start + count] = keys.detach().to(self.keys.dtype)
        self.pointer.fill_((start + count) % self.size)
