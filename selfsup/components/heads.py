"""Heads that sit on top of a backbone's feature vector."""

from torch import nn


class ProjectionMLP(nn.Sequential):
    """Projection head g(.) of SimCLR (Chen et al. 2020, sec. 2.1) and MoCo v2.

    ``num_layers`` linear layers; every layer but the last is followed by batch norm
    (optional) and ReLU. The SimCLR paper uses hidden = feature dim, output 128.
    ``output_batch_norm`` adds a batch norm without affine parameters after the last layer
    (MoCo v3's projector).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int = 128,
        num_layers: int = 2,
        batch_norm: bool = True,
        output_batch_norm: bool = False,
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"a projection head needs at least 1 layer, got {num_layers}")
        layers: list[nn.Module] = []
        width = input_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(width, hidden_dim, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            width = hidden_dim
        layers.append(nn.Linear(width, output_dim, bias=not output_batch_norm))
        if output_batch_norm:
            layers.append(nn.BatchNorm1d(output_dim, affine=False))
        super().__init__(*layers)
        self.output_dim = output_dim
