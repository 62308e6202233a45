"""RotNet: predict which of four rotations was applied.

Gidaris, Singh & Komodakis, "Unsupervised Representation Learning by Predicting Image
Rotations", ICLR 2018 (textbook §6.2.3.2):

    for a minibatch of N images, form all 4N rotations by 0, 90, 180 and 270 degrees
    (all four copies of an image in the same batch, as the paper recommends)
    loss = cross-entropy( head(pool(stage_s(x_rotated))), k )

``head_stage`` picks the backbone stage that feeds the head (-1: the last); the paper
finds that intermediate blocks transfer best.
"""

import torch.nn.functional as F

from selfsup.components.heads import ProjectionMLP
from selfsup.errors import require
from selfsup.methods.base import PretrainMethod
from selfsup.pretext import rotate_batch


class RotationPrediction(PretrainMethod):
    def __init__(self, *args, head_stage: int = -1, head_hidden_dim: int = 256, **kwargs) -> None:
        """RotNet's 4-way rotation classifier.

        Args:
            head_stage: the backbone stage whose pooled map feeds the classifier (-1: the last).
            head_hidden_dim: hidden width of the classifier.
        """
        super().__init__(*args, **kwargs)
        stages = len(self.backbone.stage_dims)
        require(
            -stages <= head_stage < stages,
            "model.init_args.head_stage",
            head_stage,
            f"a stage of this {stages}-stage backbone, in [{-stages}, {stages - 1}]",
        )
        require(head_hidden_dim >= 1, "model.init_args.head_hidden_dim", head_hidden_dim, ">= 1")
        stage_dim = self.backbone.stage_dims[head_stage]
        self.rotation_head = ProjectionMLP(stage_dim, head_hidden_dim, output_dim=4)

    def training_step(self, batch, batch_idx):
        views, labels = batch
        images = views[0]
        rotated, rotation = rotate_batch(images)
        maps = self.backbone.forward_stages(rotated)
        logits = self.rotation_head(maps[self.hparams.head_stage].mean(dim=(2, 3)))
        loss = F.cross_entropy(logits, rotation)
        accuracy = (logits.argmax(dim=1) == rotation).float().mean()
        self.log_dict({"train/rotation_loss": loss, "train/rotation_acc": accuracy}, prog_bar=True, sync_dist=True)
        upright_features = maps[-1][: images.shape[0]].mean(dim=(2, 3))
        return loss + self.online_probe_step(upright_features, labels)
