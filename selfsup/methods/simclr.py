"""SimCLR: contrastive learning of two augmented views.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
ICML 2020, Algorithm 1 (textbook eq. 6.14):

    for a minibatch of N images, draw two augmentations of each;
    h = f(x)            the backbone's representation (kept for downstream tasks)
    z = g(h)            the projection MLP's output
    loss = NT-Xent(z_a, z_b) over the 2N views, temperature tau
"""

from selfsup.components.heads import ProjectionMLP
from selfsup.errors import require
from selfsup.losses import NTXentLoss
from selfsup.methods.base import PretrainMethod


class SimCLR(PretrainMethod):
    views_needed = 2

    def __init__(
        self,
        *args,
        temperature: float = 0.5,
        projection_hidden_dim: int | None = None,
        projection_dim: int = 128,
        **kwargs,
    ) -> None:
        """SimCLR's head and loss.

        Args:
            temperature: tau of NT-Xent (0.5 on CIFAR, 0.1 on ImageNet in the paper).
            projection_hidden_dim: hidden width of g(.); the backbone's feature dimension when unset.
            projection_dim: output width of g(.), the space the loss compares in.
        """
        super().__init__(*args, **kwargs)
        require(projection_dim >= 1, "model.init_args.projection_dim", projection_dim, ">= 1")
        require(
            projection_hidden_dim is None or projection_hidden_dim >= 1,
            "model.init_args.projection_hidden_dim",
            projection_hidden_dim,
            "null or >= 1",
        )
        feature_dim = self.backbone.feature_dim
        self.projector = ProjectionMLP(feature_dim, projection_hidden_dim or feature_dim, projection_dim)
        self.criterion = NTXentLoss(temperature)

    def training_step(self, batch, batch_idx):
        (view_a, view_b), labels = batch
        features_a = self.backbone(view_a)
        features_b = self.backbone(view_b)
        loss = self.criterion(self.projector(features_a), self.projector(features_b))
        self.log("train/nt_xent", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        return loss + self.online_probe_step(features_a, labels)
