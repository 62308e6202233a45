"""RotNet: predict which of four rotations was applied.

Gidaris, Singh & Komodakis, "Unsupervised Representation Learning by Predicting Image
Rotations", ICLR 2018 (textbook §6.2.3.2):

    for a minibatch of N images, form all 4N rotations by 0, 90, 180 and 270 degrees
    (all four copies of an image in the same batch, as the paper recommends)
    loss = cross-entropy( head(f(x_rotated)), k )

f is the backbone's feature (its pooled last map; a ViT's class token), or with
``head_stage: s`` the pooled map of stage s: the paper finds that intermediate blocks
transfer best.
"""

import torch.nn.functional as F

from selfsup.components.heads import ProjectionMLP
from selfsup.errors import is_integer, require, require_sizes
from selfsup.methods.base import PretrainMethod
from selfsup.pretext import rotate_batch


class RotationPrediction(PretrainMethod):
    def __init__(self, *args, head_stage: int | None = None, head_hidden_dim: int = 256, **kwargs) -> None:
        """RotNet's 4-way rotation classifier.

        Args:
            head_stage: the backbone stage whose pooled map feeds the classifier; null: the backbone's feature.
            head_hidden_dim: hidden width of the classifier.
        """
        super().__init__(*args, **kwargs)
        stages = len(self.backbone.stage_dims)
        require(
            head_stage is None or (is_integer(head_stage) and -stages <= head_stage < stages),
            "model.init_args.head_stage",
            head_stage,
            f"null or a stage of this {stages}-stage backbone, in [{-stages}, {stages - 1}]",
        )
        require_sizes("model.init_args.", head_hidden_dim=head_hidden_dim)
        width = self.backbone.feature_dim if head_stage is None else self.backbone.stage_dims[head_stage]
        self.rotation_head = ProjectionMLP(width, head_hidden_dim, output_dim=4)

    def training_step(self, batch, batch_idx):
        views, labels = batch
        images = views[0]
        rotated, rotation = rotate_batch(images)
        features, maps = self.backbone.forward_with_stages(rotated)
        stage = self.hparams.head_stage
        logits = self.rotation_head(features if stage is None else maps[stage].mean(dim=(2, 3)))
        loss = F.cross_entropy(logits, rotation)
        accuracy = (logits.argmax(dim=1) == rotation).float().mean()
        self.log_dict({"train/rotation_loss": loss, "train/rotation_acc": accuracy}, prog_bar=True, sync_dist=True)
        return loss + self.online_probe_step(features[: images.shape[0]], labels)  # the upright images
