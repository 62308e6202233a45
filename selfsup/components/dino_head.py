"""DINO's projection head: an MLP to a bottleneck, L2 normalisation, a weight-normalised last layer.

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021, §3.1
and appendix: ``num_layers`` linear layers with GELU between them (hidden 2048, bottleneck
256), the bottleneck L2-normalised, then a weight-normalised linear layer without bias to
``output_dim`` (65536) logits. With ``norm_last_layer`` the weight norm's magnitude is fixed
at 1 (the paper's default for ViTs: it stabilises training), so every logit is a cosine
between the bottleneck and a prototype. Weight normalisation is torch's parametrisation.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class DINOHead(nn.Module):
    def __init__(
        self,
        input_dim: int,
        output_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_layers: int = 3,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hidden_dim), nn.GELU()]
            width = hidden_dim
        layers.append(nn.Linear(width, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, output_dim, bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            magnitude.fill_(1.0)
        magnitude.requires_grad_(not norm_last_layer)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.last_layer(F.normalize(self.mlp(features), dim=-1))
