"""Relative patch position: which of its 8 neighbours is the second patch?

Doersch, Gupta & Efros, "Unsupervised Visual Representation Learning by Context
Prediction", ICCV 2015 (textbook §6.2.3.2):

    cut the centre tile of a 3x3 grid and one random neighbour (gap and jitter)
    f = concat( backbone(centre), backbone(neighbour) )       shared encoder
    loss = cross-entropy( classifier(f), neighbour index in 0..7 )

Labels follow ``selfsup.pretext.NEIGHBOUR_CELLS``: 0 top-left, 1 top, 2 top-right,
3 left, 4 right, 5 bottom-left, 6 bottom, 7 bottom-right.

The online probe sees whole images (encoded without gradient), so the backbone's
batch-norm statistics mix tiles and whole images, as downstream use needs.
"""

import torch
import torch.nn.functional as F

from selfsup.components.heads import ProjectionMLP
from selfsup.errors import is_finite, require
from selfsup.methods.base import PretrainMethod
from selfsup.pretext import NEIGHBOUR_CELLS, crop_tiles, grid_offsets, normalise_tiles

CENTRE_CELL = 4


class RelativePosition(PretrainMethod):
    def __init__(self, *args, tile_fraction: float = 0.85, classifier_hidden_dim: int = 512, **kwargs) -> None:
        """The 8-way classifier of a neighbour tile's position.

        Args:
            tile_fraction: tile side over cell side; the rest is gap and jitter.
            classifier_hidden_dim: hidden width of the classifier over the pair of tile features.
        """
        super().__init__(*args, **kwargs)
        require(
            is_finite(tile_fraction) and 0 < tile_fraction <= 1,
            "model.init_args.tile_fraction",
            tile_fraction,
            "in (0, 1] (tile side over cell side)",
        )
        require(classifier_hidden_dim >= 1, "model.init_args.classifier_hidden_dim", classifier_hidden_dim, ">= 1")
        self.classifier = ProjectionMLP(2 * self.backbone.feature_dim, classifier_hidden_dim, len(NEIGHBOUR_CELLS))
        self.register_buffer("neighbour_cells", torch.tensor(NEIGHBOUR_CELLS), persistent=False)

    def training_step(self, batch, batch_idx):
        views, labels = batch
        images = views[0]
        batch_size = images.shape[0]
        top, left, tile = grid_offsets(batch_size, images.shape[-1], self.hparams.tile_fraction, device=images.device)
        neighbour = torch.randint(len(NEIGHBOUR_CELLS), (batch_size,), device=images.device)
        cells = torch.stack([torch.full_like(neighbour, CENTRE_CELL), self.neighbour_cells[neighbour]], dim=1)
        pairs = normalise_tiles(crop_tiles(images, top.gather(1, cells), left.gather(1, cells), tile))
        features = self.backbone(pairs.flatten(0, 1)).view(batch_size, -1)
        logits = self.classifier(features)
        loss = F.cross_entropy(logits, neighbour)
        accuracy = (logits.argmax(dim=1) == neighbour).float().mean()
        self.log_dict({"train/position_loss": loss, "train/position_acc": accuracy}, prog_bar=True, sync_dist=True)
        with torch.no_grad():
            whole_image_features = self.backbone(images)
        return loss + self.online_probe_step(whole_image_features, labels)
