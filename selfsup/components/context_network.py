"""The causal context network of CPC: a PixelCNN-style stack of masked convolutions over a grid.

van den Oord, Li & Vinyals, "Representation Learning with Contrastive Predictive
Coding", 2018, §3.3 (images: "a PixelCNN-style autoregressive model" over the grid of
patch encodings), as written out in Hénaff et al. 2020 (CPC v2), appendix A.2. Each of
``num_layers`` residual blocks computes

    c = 1x1 conv(ReLU(z))              -> hidden_dim
    c = (1 x 3) conv along the row     sees the current row, columns j-1..j+1
    c = (2 x 1) conv, padded on top    sees rows i-1 and i, nothing below
    z = z + 1x1 conv(ReLU(c))          -> dim

and the output is ReLU(z). Each block reaches one row further up and two columns further
sideways, never down, so the context ``c[:, :, i, j]`` is a function of the rows ``<= i``
of the input alone (all columns of row ``i`` after enough blocks): the masking is the
padding, no weight is zeroed. There is no batch or group norm: statistics over the grid
would mix the rows below into the rows above and break that causality.
"""

import torch
import torch.nn.functional as F
from torch import nn


class _CausalBlock(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(dim, hidden_dim, kernel_size=1)
        self.along_row = nn.Conv2d(hidden_dim, hidden_dim, kernel_size=(1, 3), padding=(0, 1))
        self.from_above = nn.Conv2d(hidden_dim, hidden_dim, kernel_size=(2, 1))
        self.expand = nn.Conv2d(hidden_dim, dim, kernel_size=1)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        c = self.along_row(self.reduce(F.relu(grid)))
        c = self.from_above(F.pad(c, (0, 0, 1, 0)))  # one zero row on top: output row i sees rows i-1, i
        return grid + self.expand(F.relu(c))


class ContextNetwork(nn.Module):
    """``c = g_ar(z)`` over a ``(B, dim, rows, cols)`` grid; ``c[..., i, :]`` depends on rows ``<= i`` only."""

    def __init__(self, dim: int, hidden_dim: int = 256, num_layers: int = 5) -> None:
        """Residual masked-convolution blocks (CPC v2: 5 blocks of 256 hidden channels).

        Args:
            dim: channels of the encodings, kept by the residual stream (the context has this width).
            hidden_dim: channels inside each block.
            num_layers: residual blocks; block ``n`` sees ``n`` rows up and ``n`` columns to each side.
        """
        super().__init__()
        if dim < 1 or hidden_dim < 1 or num_layers < 1:
            raise ValueError(
                f"ContextNetwork needs dim, hidden_dim, num_layers >= 1, got {dim}, {hidden_dim}, {num_layers}"
            )
        self.blocks = nn.Sequential(*(_CausalBlock(dim, hidden_dim) for _ in range(num_layers)))
        self.dim = dim

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return F.relu(self.blocks(grid))
