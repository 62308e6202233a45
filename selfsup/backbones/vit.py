"""Vision Transformers of any size, on torchvision's ``VisionTransformer``.

Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021. torchvision builds only
its published B, L and H sizes by name (``vit_b_16``, ...); this backbone builds the same
module with any size, so ViT-S/16 (Touvron et al. 2021, the size of DINO's and MoCo v3's
tables) and a ViT small enough for a CPU share the code, the parameter names and the
checkpoint loading of every torchvision ViT (:class:`TorchvisionAdapter`). The stages are
the encoder blocks, their patch tokens laid out as a ``(B, D, h, w)`` map; the feature is
the class token after the final norm, or the patch tokens' mean (``pool: mean``).

Registered sizes (:data:`VIT_SIZES`): ``vit_micro`` (16 px, patch 4, 6 blocks of width 64:
trains on digits on a CPU; not a published size), ``vit_small`` (ViT-S/16) and
``vit_base`` (ViT-B/16, the module of torchvision's ``vit_b_16``). Any argument overrides
its size's, e.g. ``build_backbone("vit_small", image_size=96)``.
"""

import torchvision

from selfsup.backbones.torchvision_models import TorchvisionAdapter
from selfsup.errors import ConfigurationError, is_integer

VIT_SIZES = {
    "vit_micro": dict(image_size=16, patch_size=4, num_layers=6, num_heads=4, hidden_dim=64, mlp_dim=256),
    "vit_small": dict(image_size=224, patch_size=16, num_layers=12, num_heads=6, hidden_dim=384, mlp_dim=1536),
    "vit_base": dict(image_size=224, patch_size=16, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072),
}


class ViT(TorchvisionAdapter):
    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 16,
        num_layers: int = 12,
        num_heads: int = 6,
        hidden_dim: int = 384,
        mlp_dim: int = 1536,
        pool: str = "cls",
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ) -> None:
        """A ViT; the defaults are ViT-S/16.

        Args:
            image_size: the side of the square input, a multiple of ``patch_size``.
            patch_size: the side of each patch (its token).
            num_layers: encoder blocks, the stages.
            num_heads: attention heads per block; ``hidden_dim`` is a multiple of it.
            hidden_dim: the width of the tokens, the feature's dimension.
            mlp_dim: the hidden width of each block's MLP.
            pool: ``cls`` (the class token) or ``mean`` (the patch tokens' mean) as the feature.
            dropout, attention_dropout: torchvision's dropout rates, 0 as in the self-supervised papers.
        """
        sizes = dict(
            image_size=image_size,
            patch_size=patch_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            mlp_dim=mlp_dim,
        )
        for key, value in sizes.items():
            if not (is_integer(value) and value >= 1):
                raise ConfigurationError(f"the ViT's {key} must be an integer >= 1, got {value!r}.")
        if image_size % patch_size:
            raise ConfigurationError(
                f"the ViT's image_size {image_size} is not a multiple of its patch_size {patch_size}; "
                "choose sizes whose patches tile the image."
            )
        if hidden_dim % num_heads:
            raise ConfigurationError(
                f"the ViT's hidden_dim {hidden_dim} is not a multiple of its num_heads {num_heads}."
            )
        for key, value in (("dropout", dropout), ("attention_dropout", attention_dropout)):
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
                raise ConfigurationError(f"the ViT's {key} must be a number in [0, 1), got {value!r}.")
        model = torchvision.models.VisionTransformer(
            **sizes, dropout=float(dropout), attention_dropout=float(attention_dropout)
        )
        stages = [f"encoder.layers.encoder_layer_{index}" for index in range(num_layers)]
        super().__init__(model, f"ViT-{hidden_dim}/{patch_size}", stages, pool)
