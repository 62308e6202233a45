"""MoCo: momentum contrast with a queue of keys, v1 and v2.

He et al., "Momentum Contrast for Unsupervised Visual Representation Learning",
CVPR 2020, Algorithm 1 (textbook eqs. 6.12 and 6.13); Chen et al., "Improved
Baselines with Momentum Contrastive Learning" (v2: MLP head, temperature 0.2, blur,
cosine schedule):

    for a minibatch of N images, draw two augmentations x_q, x_k
    q = f_q(x_q)                       query encoder (backbone + head), trained
    k = f_k(x_k)                       key encoder, no gradient, with Shuffle-BN
    loss = InfoNCE(q, k+, queue)       eq. (1), temperature tau
    SGD step on f_q
    f_k <- m f_k + (1 - m) f_q          eq. (2), backbone and head
    enqueue(k from every rank), dequeue the oldest

``symmetric=True`` also contrasts the second view's query with the first view's key
and averages the two losses (solo-learn's "MoCo v2+").
"""

from typing import Literal

import torch
from torch import nn

from selfsup.components.heads import ProjectionMLP
from selfsup.components.key_queue import KeyQueue
from selfsup.components.split_batch_norm import use_split_batch_norm
from selfsup.distributed import gather, is_distributed, shuffle_across_ranks, unshuffle_across_ranks
from selfsup.errors import ConfigurationError, require
from selfsup.losses import InfoNCELoss
from selfsup.methods.base import PretrainMethod


class MoCo(PretrainMethod):
    views_needed = 2

    def __init__(
        self,
        *args,
        queue_size: int = 65536,
        temperature: float = 0.2,
        projection: Literal["linear", "mlp"] = "mlp",
        projection_dim: int = 128,
        projection_hidden_dim: int | None = None,
        encoder_momentum: float = 0.999,
        encoder_momentum_schedule: Literal["constant", "cosine"] = "constant",
        symmetric: bool = False,
        shuffle_bn: bool = True,
        split_bn_groups: int = 1,
        **kwargs,
    ) -> None:
        """MoCo v1 is ``projection="linear", temperature=0.07``; v2 is ``"mlp", 0.2``.

        Args:
            queue_size: keys in the dictionary K; a multiple of the keys enqueued per step.
            temperature: tau of InfoNCE.
            projection: ``linear`` (v1) or ``mlp`` (v2) head on the backbone.
            projection_dim: the key and query width.
            projection_hidden_dim: hidden width of the MLP head; the feature dimension when unset.
            encoder_momentum: m of eq. (2), the key encoder's EMA momentum.
            encoder_momentum_schedule: ``constant`` m, or ``cosine`` from m to 1 over training.
            symmetric: also contrast the second view's query with the first view's key (v2+).
            shuffle_bn: permute the key batch across ranks before the key encoder (Shuffle-BN).
            split_bn_groups: on one device, batch norm over this many interleaved groups, emulating Shuffle-BN.
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        require(queue_size >= 1, key + "queue_size", queue_size, ">= 1 (65536 in the paper)")
        require(projection_dim >= 1, key + "projection_dim", projection_dim, ">= 1")
        require(
            projection_hidden_dim is None or projection_hidden_dim >= 1,
            key + "projection_hidden_dim",
            projection_hidden_dim,
            "null or >= 1",
        )
        require(split_bn_groups >= 1, key + "split_bn_groups", split_bn_groups, ">= 1")
        feature_dim = self.backbone.feature_dim
        if projection == "linear":
            self.projector = nn.Linear(feature_dim, projection_dim)
        else:
            self.projector = ProjectionMLP(
                feature_dim, projection_hidden_dim or feature_dim, projection_dim, batch_norm=False
            )
        if split_bn_groups > 1:
            use_split_batch_norm(self.backbone, split_bn_groups)
        momentum = dict(momentum=encoder_momentum, schedule=encoder_momentum_schedule, name="encoder_momentum")
        self.key_backbone = self.momentum_copy(self.backbone, **momentum)
        self.key_projector = self.momentum_copy(self.projector, **momentum)
        self.queue = KeyQueue(queue_size, projection_dim)
        self.criterion = InfoNCELoss(temperature)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage != "fit":
            return
        batch_size = self._per_device_batch_size()
        keys_per_step = batch_size * self.trainer.world_size * (2 if self.hparams.symmetric else 1)
        if self.hparams.queue_size % keys_per_step:
            raise ConfigurationError(
                f"model.queue_size={self.hparams.queue_size} must be a multiple of the keys enqueued per step, "
                f"{keys_per_step} (data.batch_size x devices{' x 2 views' if self.hparams.symmetric else ''}); "
                f"e.g. {keys_per_step * max(1, self.hparams.queue_size // keys_per_step)}."
            )
        groups = self.hparams.split_bn_groups
        if batch_size % groups:
            raise ConfigurationError(f"data.batch_size={batch_size} must be a multiple of split_bn_groups={groups}.")

    def training_step(self, batch, batch_idx):
        (view_a, view_b), labels = batch
        features_a = self.backbone(view_a)
        keys_b = self.encode_keys(view_b)
        loss = self.criterion(self.projector(features_a), keys_b, self.queue.keys.clone())
        keys = keys_b
        if self.hparams.symmetric:
            keys_a = self.encode_keys(view_a)
            loss_b = self.criterion(self.projector(self.backbone(view_b)), keys_a, self.queue.keys.clone())
            loss = (loss + loss_b) / 2
            keys = torch.cat([keys_b, keys_a])
        self.queue.enqueue(gather(keys))
        self.log("train/info_nce", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        return loss + self.online_probe_step(features_a, labels)

    @torch.no_grad()
    def encode_keys(self, images: torch.Tensor) -> torch.Tensor:
        """Keys of ``images`` from the momentum encoder, with the batch shuffled for batch norm."""
        if self.hparams.shuffle_bn and is_distributed():
            shuffled, unshuffle = shuffle_across_ranks(images)
            return unshuffle_across_ranks(self.key_projector(self.key_backbone(shuffled)), unshuffle)
        if self.hparams.shuffle_bn and self.hparams.split_bn_groups > 1:
            permutation = torch.randperm(images.shape[0], device=images.device)
            keys = self.key_projector(self.key_backbone(images[permutation]))
            return keys[torch.argsort(permutation)]
        return self.key_projector(self.key_backbone(images))
