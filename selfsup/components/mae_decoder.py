"""MAE's light decoder: the visible tokens put back in place, mask tokens elsewhere, a few blocks, pixels out.

He et al. 2022, §3 ("MAE decoder"): the encoder's tokens are projected to the decoder's
width, a shared learned mask token fills every masked position, a position embedding is
added to all, a stack of Transformer blocks (torchvision's ``EncoderBlock``, the same block
as the encoder's) and a final norm follow, and a linear layer predicts each patch's
``p * p * C`` pixels. The paper's default is 8 blocks of width 512 with 16 heads for ViT-B/L;
it is used only during pretraining. The class token passes through the decoder and is
dropped before the prediction. The position embedding is learned (normal, std 0.02, as
torchvision's encoder); the paper's is a fixed 2-D sine-cosine.
"""

import torch
from torch import nn
from torchvision.models.vision_transformer import EncoderBlock


class MAEDecoder(nn.Module):
    def __init__(
        self,
        encoder_dim: int,
        num_patches: int,
        patch_pixels: int,
        decoder_dim: int = 512,
        depth: int = 8,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
    ) -> None:
        """Args: encoder_dim: the encoder's token width; num_patches: L; patch_pixels: p * p * C;
        decoder_dim, depth, num_heads, mlp_ratio: the decoder's blocks."""
        super().__init__()
        self.num_patches = num_patches
        self.embed = nn.Linear(encoder_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.position_embedding = nn.Parameter(torch.empty(1, num_patches + 1, decoder_dim).normal_(std=0.02))
        nn.init.normal_(self.mask_token, std=0.02)
        self.blocks = nn.Sequential(
            *(EncoderBlock(num_heads, decoder_dim, round(mlp_ratio * decoder_dim), 0.0, 0.0) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.predict = nn.Linear(decoder_dim, patch_pixels)

    def forward(self, tokens: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        """Pixels ``(B, L, p * p * C)`` of every patch.

        Args:
            tokens: ``(B, 1 + K, encoder_dim)``, the encoder's class token and its K visible patch tokens.
            kept: ``(B, K)``, the position of each visible token among the L patches.
        """
        tokens = self.embed(tokens)
        batch, width = tokens.shape[0], tokens.shape[-1]
        patches = self.mask_token.expand(batch, self.num_patches, width).clone()
        patches.scatter_(1, kept.unsqueeze(-1).expand(-1, -1, width), tokens[:, 1:])
        sequence = torch.cat([tokens[:, :1], patches], dim=1) + self.position_embedding
        return self.predict(self.norm(self.blocks(sequence)))[:, 1:]
