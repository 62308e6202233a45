"""MAE: mask most patches of the image and reconstruct them from the rest.

He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022, §3 — the
generative approach of the textbook's taxonomy (§6.2.3) on a Vision Transformer. For a
minibatch of images:

    patches = patch_embedding(x) + position        L tokens
    kept, mask = random_patch_mask(ratio 0.75)     per image, uniformly without replacement
    z = encoder([class token] + patches[kept])     the ViT's blocks on the visible 25% only
    pixels = decoder(z, kept)                      mask tokens in place of the rest, light blocks
    loss = MSE(pixels, per-patch normalised x) on the masked patches only

The encoder is the backbone itself (its patch projection, class token, position embedding,
blocks and final norm, with torchvision's names), so the exported backbone evaluates
downstream on all patches without masking, like any checkpoint. The online probe reads the
backbone's feature of the whole, unmasked view (one extra forward without gradient), the
feature the monitors and downstream tasks use. Needs a ViT backbone (``vit_micro``,
``vit_small``, ``vit_base``, torchvision's ``vit_b_16``...).
"""

import torch

from selfsup.components.mae_decoder import MAEDecoder
from selfsup.errors import ConfigurationError, is_finite, require, require_sizes
from selfsup.losses.mae import masked_patch_mse
from selfsup.methods.base import PretrainMethod
from selfsup.pretext.patch_masking import random_patch_mask


class MAE(PretrainMethod):
    def __init__(
        self,
        *args,
        mask_ratio: float = 0.75,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        normalize_target: bool = True,
        **kwargs,
    ) -> None:
        """MAE's masking, decoder and loss.

        Args:
            mask_ratio: the fraction of patches masked, in [0, 1) (the paper: 0.75).
            decoder_dim: the decoder's width (512).
            decoder_depth: the decoder's blocks (8).
            decoder_heads: its attention heads; ``decoder_dim`` is a multiple of it (16).
            normalize_target: per-patch normalised pixels as the target (the paper's default).
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        if not getattr(self.backbone, "is_vit", False):
            raise ConfigurationError(
                f"MAE masks the patch tokens of a Vision Transformer; model.init_args.backbone "
                f"{self.hparams.backbone!r} is not one: use vit_micro, vit_small, vit_base or vit_b_16."
            )
        require(is_finite(mask_ratio) and 0 <= mask_ratio < 1, key + "mask_ratio", mask_ratio, "in [0, 1)")
        require_sizes(key, decoder_dim=decoder_dim, decoder_depth=decoder_depth, decoder_heads=decoder_heads)
        require(
            decoder_dim % decoder_heads == 0,
            key + "decoder_dim",
            decoder_dim,
            f"a multiple of decoder_heads={decoder_heads}",
        )
        self.patch_size = self.backbone.conv_proj.kernel_size[0]
        num_patches = (self.backbone.image_size // self.patch_size) ** 2
        require(
            round(num_patches * mask_ratio) >= 1,
            key + "mask_ratio",
            mask_ratio,
            f"large enough to mask at least one of the {num_patches} patches (above {0.5 / num_patches:.3g})",
        )
        self.decoder = MAEDecoder(
            self.backbone.feature_dim,
            num_patches,
            self.patch_size**2 * self.backbone.conv_proj.in_channels,
            decoder_dim,
            decoder_depth,
            decoder_heads,
        )

    def training_step(self, batch, batch_idx):
        views, labels = batch
        images = views[0]
        loss = self.mae_objective(images)
        self.log("train/reconstruction_loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        with torch.no_grad():
            features = self.backbone(images)
        return loss + self.online_probe_step(features, labels)

    def mae_objective(self, images: torch.Tensor, kept: torch.Tensor | None = None, mask=None) -> torch.Tensor:
        """The loss on the masked patches; ``kept`` and ``mask`` (from :func:`random_patch_mask`) drawn when None."""
        tokens = self.embed_patches(images)
        if kept is None:
            kept, mask = random_patch_mask(images.shape[0], tokens.shape[1], self.hparams.mask_ratio, images.device)
        visible = tokens.gather(1, kept.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        encoded = self.encode_visible(visible)
        pixels = self.decoder(encoded, kept)
        return masked_patch_mse(pixels, images, mask, self.patch_size, self.hparams.normalize_target)

    def embed_patches(self, images: torch.Tensor) -> torch.Tensor:
        """The ``(B, L, D)`` patch tokens with their position embedding (torchvision's order: row-major)."""
        self.backbone.check_input_size(images)
        tokens = self.backbone.conv_proj(images).flatten(2).transpose(1, 2)
        return tokens + self.backbone.encoder.pos_embedding[:, 1:]

    def encode_visible(self, visible: torch.Tensor) -> torch.Tensor:
        """The class token and the visible tokens through the ViT's blocks and final norm: ``(B, 1 + K, D)``."""
        backbone = self.backbone
        class_token = backbone.class_token + backbone.encoder.pos_embedding[:, :1]
        sequence = torch.cat([class_token.expand(visible.shape[0], -1, -1), visible], dim=1)
        return backbone.encoder.ln(backbone.encoder.layers(backbone.encoder.dropout(sequence)))
