"""The networks Deep InfoMax trains beside its encoder (Hjelm et al., ICLR 2019, appendix A.2).

* :class:`ResidualEmbedding` and :class:`MapEmbedding` are the two halves of a
  separable critic T(x, y) = a(x) . b(y) (the paper's "encode-and-dot-product"), which
  scores every pair in a batch with one matrix product.
* :class:`PriorMatching` is the adversarial term that pushes the distribution of the
  encoding towards a uniform prior (the paper's section 3.4).
"""

import torch
import torch.nn.functional as F
from torch import nn


class ResidualEmbedding(nn.Module):
    """Two-layer MLP plus a linear shortcut, on the last dimension.

    Applied to a feature map laid out as (N, locations, channels) it is the paper's
    1x1-convolution embedding of every location; applied to (N, D) it embeds a vector.
    """

    def __init__(self, input_dim: int, output_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(input_dim, output_dim), nn.ReLU(), nn.Linear(output_dim, output_dim))
        self.shortcut = nn.Linear(input_dim, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x) + self.shortcut(x)


class MapEmbedding(nn.Module):
    """A whole feature map (N, C, M, M) to one vector: the "input" side of DIM's global MI.

    A 3x3 convolution, average pooling to a ``grid`` x ``grid`` layout (so the critic
    does not depend on the input size) and an MLP over the flattened grid.
    """

    def __init__(self, channels: int, output_dim: int, hidden_channels: int = 64, grid: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden_channels, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(grid),
            nn.Flatten(),
            nn.Linear(hidden_channels * grid * grid, output_dim),
            nn.ReLU(),
            nn.Linear(output_dim, output_dim),
        )

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.net(feature_map)


class PriorMatching(nn.Module):
    """Adversarial matching of sigmoid(Y) to the uniform prior on [0, 1]^d (DIM, sec. 3.4).

    ``forward(encoding)`` returns ``(encoder_loss, discriminator_loss)``, meant for one
    backward pass: the discriminator loss sees the encoding detached, so it trains only
    the discriminator; the encoder loss (the non-saturating GAN loss, -log D(sigmoid(Y)))
    sees the discriminator's parameters detached, so it trains only the encoder. Each
    side then steps its own optimiser.
    """

    def __init__(self, encoding_dim: int, hidden_dims: tuple[int, ...] = (1000, 200)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = encoding_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.discriminator = nn.Sequential(*layers)

    def forward(self, encoding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = torch.sigmoid(encoding)
        prior_logits = self.discriminator(torch.rand_like(codes))
        code_logits = self.discriminator(codes.detach())
        discriminator_loss = F.binary_cross_entropy_with_logits(
            prior_logits, torch.ones_like(prior_logits)
        ) + F.binary_cross_entropy_with_logits(code_logits, torch.zeros_like(code_logits))

        frozen = {name: parameter.detach() for name, parameter in self.discriminator.named_parameters()}
        fooling_logits = torch.func.functional_call(self.discriminator, frozen, (codes,))
        encoder_loss = F.binary_cross_entropy_with_logits(fooling_logits, torch.ones_like(fooling_logits))
        return encoder_loss, discriminator_loss
