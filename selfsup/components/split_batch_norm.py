"""Split batch norm: batch statistics over groups of a batch, as if spread over devices.

MoCo's Shuffle-BN needs several devices; on one device, normalising ``num_splits``
interleaved groups separately (and shuffling the key batch between them) emulates it,
as in the MoCo authors' single-GPU demonstration. Running statistics are the mean over
the groups, so evaluation behaves like an ordinary batch norm.
"""

import torch
import torch.nn.functional as F
from torch import nn


class SplitBatchNorm2d(nn.BatchNorm2d):
    def __init__(self, num_features: int, num_splits: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.num_splits = num_splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.num_splits == 1:
            return super().forward(x)
        batch, channels, height, width = x.shape
        splits = self.num_splits
        if batch % splits:
            raise ValueError(f"a batch of {batch} cannot be split into {splits} equal batch-norm groups")
        running_mean = self.running_mean.repeat(splits)
        running_var = self.running_var.repeat(splits)
        # Sample i lands in group i % splits: each group is normalised on its own.
        out = F.batch_norm(
            x.reshape(batch // splits, channels * splits, height, width),
            running_mean,
            running_var,
            self.weight.repeat(splits),
            self.bias.repeat(splits),
            True,
            self.momentum,
            self.eps,
        ).reshape(batch, channels, height, width)
        self.running_mean.copy_(running_mean.view(splits, channels).mean(dim=0))
        self.running_var.copy_(running_var.view(splits, channels).mean(dim=0))
        self.num_batches_tracked.add_(1)
        return out


def use_split_batch_norm(module: nn.Module, num_splits: int) -> nn.Module:
    """Replace every ``BatchNorm2d`` inside ``module`` by a ``SplitBatchNorm2d`` with the same state."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, SplitBatchNorm2d):
            split = SplitBatchNorm2d(
                child.num_features, num_splits, eps=child.eps, momentum=child.momentum, affine=child.affine
            )
            split.load_state_dict(child.state_dict())
            setattr(module, name, split)
        else:
            use_split_batch_norm(child, num_splits)
    return module
