"""Jigsaw puzzles: recover which permutation shuffled the nine tiles of an image.

Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
Puzzles", ECCV 2016 (textbook §6.2.3.2):

    cut a 3x3 grid of tiles with a random gap and jitter, standardise each tile
    draw p from a fixed set of permutations; reorder the tiles by P[p]
    f = concat( backbone(tile_1), ..., backbone(tile_9) )     shared tile encoder
    loss = cross-entropy( classifier(f), p )

The permutation set (greedy maximal Hamming distance, deterministic from
``permutation_seed``) is a buffer: it is saved in every checkpoint and restored on resume.

The online probe sees whole images (encoded without gradient), so the backbone's
batch-norm statistics mix tiles and whole images, as downstream use needs.
"""

import torch
import torch.nn.functional as F

from selfsup.components.heads import ProjectionMLP
from selfsup.errors import is_finite, require
from selfsup.methods.base import PretrainMethod
from selfsup.pretext import crop_tiles, grid_offsets, hamming_permutation_set, normalise_tiles

GRID_TILES = 9
#: The largest permutation set the greedy maximal-Hamming choice makes in reasonable time.
MAX_PERMUTATIONS = 10_000


class Jigsaw(PretrainMethod):
    def __init__(
        self,
        *args,
        num_permutations: int = 100,
        permutation_seed: int = 0,
        tile_fraction: float = 0.85,
        classifier_hidden_dim: int = 1024,
        **kwargs,
    ) -> None:
        """The jigsaw puzzle's permutation set and classifier.

        Args:
            num_permutations: permutations of the 9 tiles to classify (chosen for maximal Hamming distance).
            permutation_seed: draws the permutation set, deterministically.
            tile_fraction: tile side over cell side (the paper: 64 of 75 pixels); the rest is gap and jitter.
            classifier_hidden_dim: hidden width of the classifier over the 9 concatenated tile features.
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        require(
            1 <= num_permutations <= MAX_PERMUTATIONS,
            key + "num_permutations",
            num_permutations,
            f"in [1, {MAX_PERMUTATIONS}] (the papers use 100 to 10,000; choosing the set costs N x 9! comparisons)",
        )
        require(
            is_finite(tile_fraction) and 0 < tile_fraction <= 1,
            key + "tile_fraction",
            tile_fraction,
            "in (0, 1] (tile side over cell side)",
        )
        require(classifier_hidden_dim >= 1, key + "classifier_hidden_dim", classifier_hidden_dim, ">= 1")
        self.register_buffer("permutations", hamming_permutation_set(num_permutations, permutation_seed))
        self.classifier = ProjectionMLP(GRID_TILES * self.backbone.feature_dim, classifier_hidden_dim, num_permutations)

    def training_step(self, batch, batch_idx):
        views, labels = batch
        images = views[0]
        batch_size = images.shape[0]
        top, left, tile = grid_offsets(batch_size, images.shape[-1], self.hparams.tile_fraction, device=images.device)
        tiles = normalise_tiles(crop_tiles(images, top, left, tile))
        permutation = torch.randint(len(self.permutations), (batch_size,), device=images.device)
        shuffled = tiles[torch.arange(batch_size, device=images.device)[:, None], self.permutations[permutation]]
        features = self.backbone(shuffled.flatten(0, 1)).view(batch_size, -1)
        logits = self.classifier(features)
        loss = F.cross_entropy(logits, permutation)
        accuracy = (logits.argmax(dim=1) == permutation).float().mean()
        self.log_dict({"train/jigsaw_loss": loss, "train/jigsaw_acc": accuracy}, prog_bar=True, sync_dist=True)
        with torch.no_grad():
            whole_image_features = self.backbone(images)
        return loss + self.online_probe_step(whole_image_features, labels)
