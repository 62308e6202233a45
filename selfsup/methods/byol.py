"""BYOL: an online network learns to predict a slowly moving target network's projection.

Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
NeurIPS 2020, §3.1 and Algorithm 1. For a minibatch of images:

    draw two augmentations v, v' of each image
    online:  y = f(v),   z = g(y),   p = q(z)          backbone, projector, predictor
    target:  z'_t = g_t(f_t(v'))                       EMA copies of f and g, no gradient
    loss = L(p(v), z_t(v')) + L(p(v'), z_t(v))          eq. (2) symmetrised, L = 2 - 2 cos
    optimiser step on the online network only
    f_t, g_t <- tau f_t + (1 - tau) f, g              tau: 0.996 -> 1 on a cosine (§3.2)

No negatives: the predictor and the slowly moving target are what keep the representation
from collapsing. Projector and predictor are two-layer MLPs with batch norm and ReLU in the
hidden layer (4096 -> 256 in the paper). The target's momentum follows the shell's one EMA
schedule (:meth:`PretrainMethod.momentum_copy`), the loss is :func:`selfsup.losses.byol.normalized_mse`.
"""

from typing import Literal

import torch

from selfsup.components.heads import ProjectionMLP
from selfsup.errors import require_sizes
from selfsup.losses.byol import normalized_mse
from selfsup.methods.base import PretrainMethod


class BYOL(PretrainMethod):
    views_needed = 2

    def __init__(
        self,
        *args,
        projection_hidden_dim: int = 4096,
        projection_dim: int = 256,
        prediction_hidden_dim: int = 4096,
        target_momentum: float = 0.996,
        target_momentum_schedule: Literal["constant", "cosine"] = "cosine",
        **kwargs,
    ) -> None:
        """BYOL's online heads and target network.

        Args:
            projection_hidden_dim: hidden width of the projector g (the paper: 4096).
            projection_dim: the output width of projector and predictor (256).
            prediction_hidden_dim: hidden width of the predictor q (4096).
            target_momentum: tau_base, the target's EMA momentum at the first step (0.996).
            target_momentum_schedule: ``cosine`` from tau_base to 1 over training (the paper's), or ``constant``.
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        require_sizes(
            key,
            projection_hidden_dim=projection_hidden_dim,
            projection_dim=projection_dim,
            prediction_hidden_dim=prediction_hidden_dim,
        )
        self.projector = ProjectionMLP(self.backbone.feature_dim, projection_hidden_dim, projection_dim)
        self.predictor = ProjectionMLP(projection_dim, prediction_hidden_dim, projection_dim)
        momentum = dict(momentum=target_momentum, schedule=target_momentum_schedule, name="target_momentum")
        self.target_backbone = self.momentum_copy(self.backbone, **momentum)
        self.target_projector = self.momentum_copy(self.projector, **momentum)

    def training_step(self, batch, batch_idx):
        (view, other_view), labels = batch
        loss, features = self.byol_objective(view, other_view)
        self.log("train/byol_loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        return loss + self.online_probe_step(features, labels)

    def byol_objective(self, view: torch.Tensor, other_view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The symmetrised loss and the online features of ``view`` (for the online probe)."""
        features, other_features = self.backbone(view), self.backbone(other_view)
        prediction = self.predictor(self.projector(features))
        other_prediction = self.predictor(self.projector(other_features))
        target, other_target = self.target_projections(view), self.target_projections(other_view)
        return normalized_mse(prediction, other_target) + normalized_mse(other_prediction, target), features

    @torch.no_grad()
    def target_projections(self, images: torch.Tensor) -> torch.Tensor:
        """z'_t = g_t(f_t(images)), the target network's projections."""
        return self.target_projector(self.target_backbone(images))
