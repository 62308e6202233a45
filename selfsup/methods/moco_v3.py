"""MoCo v3: momentum contrast without a queue, for Vision Transformers and ResNets.

Chen, Xie & He, "An Empirical Study of Training Self-Supervised Vision Transformers",
ICCV 2021, Algorithm 1. For a minibatch of images:

    draw two augmentations x1, x2 of each image
    q1, q2 = f_q(x1), f_q(x2)          backbone, projector, predictor: trained
    k1, k2 = f_k(x1), f_k(x2)          momentum backbone and projector, no gradient
    loss = ctr(q1, k2) + ctr(q2, k1)   ctr: InfoNCE against the keys of every rank, x 2 tau
    optimiser step on f_q
    f_k <- m f_k + (1 - m) f_q          m: 0.99 -> 1 on a cosine

The keys are those of the other images of the same (global) batch: no queue
(:class:`selfsup.losses.moco_v3.MoCoV3Loss`). The projector has three layers for a ViT (two
for a ResNet in the public code: ``projection_layers``) and the predictor two, batch norm
after every hidden layer and, in the projector, after the output (without affine
parameters), 4096 -> 256 in the paper. ``freeze_patch_embedding`` keeps a
ViT's random patch projection fixed, the paper's remedy for its training instability (§4.2).
The momentum encoder follows the shell's one EMA schedule (:meth:`PretrainMethod.momentum_copy`).
"""

from typing import Literal

import torch

from selfsup.components.heads import ProjectionMLP
from selfsup.errors import is_finite, require, require_sizes
from selfsup.losses.moco_v3 import MoCoV3Loss
from selfsup.methods.base import PretrainMethod


class MoCoV3(PretrainMethod):
    views_needed = 2

    def __init__(
        self,
        *args,
        projection_hidden_dim: int = 4096,
        projection_dim: int = 256,
        projection_layers: int = 3,
        prediction_hidden_dim: int = 4096,
        temperature: float = 0.2,
        encoder_momentum: float = 0.99,
        encoder_momentum_schedule: Literal["constant", "cosine"] = "cosine",
        freeze_patch_embedding: bool = False,
        **kwargs,
    ) -> None:
        """MoCo v3's heads, momentum encoder and loss.

        Args:
            projection_hidden_dim: hidden width of the projector (the paper: 4096).
            projection_dim: the width of queries and keys (256).
            projection_layers: the projector's linear layers (the public code: 3 for ViTs, 2 for ResNets).
            prediction_hidden_dim: hidden width of the 2-layer predictor (4096).
            temperature: tau of the contrastive loss (0.2 for ViTs, 1.0 for ResNet-50).
            encoder_momentum: m at the first step (0.99).
            encoder_momentum_schedule: ``cosine`` from m to 1 over training (the paper's), or ``constant``.
            freeze_patch_embedding: keep a ViT's patch projection at its random initialisation (§4.2).
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        require_sizes(
            key,
            projection_hidden_dim=projection_hidden_dim,
            projection_dim=projection_dim,
            prediction_hidden_dim=prediction_hidden_dim,
            projection_layers=projection_layers,
        )
        require(is_finite(temperature) and temperature > 0, key + "temperature", temperature, "a finite number > 0")
        if freeze_patch_embedding:
            require(
                hasattr(self.backbone, "conv_proj"),
                key + "freeze_patch_embedding",
                freeze_patch_embedding,
                f"false for backbone {self.hparams.backbone!r}, which has no ViT patch projection",
            )
            self.backbone.conv_proj.requires_grad_(False)
        feature_dim = self.backbone.feature_dim
        self.projector = ProjectionMLP(
            feature_dim, projection_hidden_dim, projection_dim, num_layers=projection_layers, output_batch_norm=True
        )
        self.predictor = ProjectionMLP(projection_dim, prediction_hidden_dim, projection_dim)
        momentum = dict(momentum=encoder_momentum, schedule=encoder_momentum_schedule, name="encoder_momentum")
        self.momentum_backbone = self.momentum_copy(self.backbone, **momentum)
        self.momentum_projector = self.momentum_copy(self.projector, **momentum)
        self.criterion = MoCoV3Loss(temperature)

    def training_step(self, batch, batch_idx):
        (view_1, view_2), labels = batch
        loss, features = self.moco_v3_objective(view_1, view_2)
        self.log("train/moco_v3_loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        return loss + self.online_probe_step(features, labels)

    def moco_v3_objective(self, view_1: torch.Tensor, view_2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The symmetrised loss and the backbone features of ``view_1`` (for the online probe)."""
        features_1, features_2 = self.backbone(view_1), self.backbone(view_2)
        query_1 = self.predictor(self.projector(features_1))
        query_2 = self.predictor(self.projector(features_2))
        key_1, key_2 = self.momentum_keys(view_1), self.momentum_keys(view_2)
        return self.criterion(query_1, key_2) + self.criterion(query_2, key_1), features_1

    @torch.no_grad()
    def momentum_keys(self, images: torch.Tensor) -> torch.Tensor:
        """k = f_k(images), the momentum encoder's keys."""
        return self.momentum_projector(self.momentum_backbone(images))
