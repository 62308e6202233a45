"""A SimCLR whose loss turns NaN at one chosen step: the fault the non-finite guard is for."""

import torch

from selfsup.methods import SimCLR


class DivergingSimCLR(SimCLR):
    def __init__(self, *args, nan_at_step: int = 3, nan_on_rank: int | None = None, **kwargs) -> None:
        """``nan_on_rank``: only that rank's loss turns NaN (all ranks' when None)."""
        super().__init__(*args, **kwargs)
        self.nan_at_step, self.nan_on_rank = nan_at_step, nan_on_rank

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        here = self.nan_on_rank is None or self.nan_on_rank == self.global_rank
        return loss * torch.nan if here and self.global_step == self.nan_at_step else loss
