"""Deep InfoMax: maximise the MI between an image's local features and its encoding.

Hjelm et al., "Learning deep representations by mutual information estimation and
maximization", ICLR 2019; textbook eqs. 6.5 and 6.9. For a minibatch of N images:

    h1 = backbone stage ``local_stage``(x)          an M x M feature map
    Y  = encoding_head(pool(backbone(x)))           the global vector, Y = h2(h1(x))
    global MI:  I(h1(x); Y)                          critic: MapEmbedding(h1) . Embedding(Y)
    local MI:   1/M^2 sum_ij I(h1(x)_ij; Y)          critic: Embedding(h1_ij) . Embedding(Y)
    loss = -(alpha * global MI + beta * local MI) + gamma * prior matching

Each MI is one of the bounds of :mod:`selfsup.losses.mutual_information` (``estimator``:
"jsd", "dv" with MINE's bias correction, or "infonce"), with the other images of the
batch, gathered from all ranks, as negatives. The paper's DIM(L) is alpha=0, beta=1,
gamma=0.1; DIM(G) is alpha=1, beta=0, gamma=1.

Prior matching (gamma > 0) trains a discriminator between sigmoid(Y) and the uniform
prior with its own Adam optimiser, so the method uses manual optimisation: one
backward pass over the summed losses (:class:`PriorMatching` keeps the two players'
gradients apart), then each optimiser steps.
"""

import torch
from torch import nn

from selfsup.components.critics import MapEmbedding, PriorMatching, ResidualEmbedding
from selfsup.errors import ConfigurationError, is_finite, require
from selfsup.losses.infomax import InfoMaxLoss
from selfsup.losses.mutual_information import Estimator
from selfsup.methods.base import PretrainMethod


class DeepInfoMax(PretrainMethod):
    separately_optimised = ("prior_matching",)

    def __init__(
        self,
        *args,
        local_stage: int = -2,
        encoding_dim: int = 64,
        critic_dim: int = 512,
        estimator: Estimator = "infonce",
        dv_ema_rate: float = 0.01,
        global_weight: float = 0.0,
        local_weight: float = 1.0,
        prior_weight: float = 0.1,
        discriminator_lr: float = 1e-4,
        **kwargs,
    ) -> None:
        """Deep InfoMax's critics, estimator and prior.

        Args:
            local_stage: the backbone stage whose M x M map is the local feature (-2: the one before last).
            encoding_dim: width of the global encoding Y.
            critic_dim: width of the separable critic's embeddings.
            estimator: the MI bound, ``jsd``, ``dv`` or ``infonce``.
            dv_ema_rate: rate of MINE's moving average in the DV gradient.
            global_weight: alpha, weight of the global MI term.
            local_weight: beta, weight of the local MI term (eq. 6.9).
            prior_weight: gamma, weight of prior matching; 0 turns the discriminator off.
            discriminator_lr: Adam learning rate of the prior discriminator.
        """
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        key = "model.init_args."
        for name, value in (
            ("global_weight", global_weight),
            ("local_weight", local_weight),
            ("prior_weight", prior_weight),
        ):
            require(is_finite(value) and value >= 0, key + name, value, "a finite number >= 0")
        require(is_finite(discriminator_lr) and discriminator_lr > 0, key + "discriminator_lr", discriminator_lr, "> 0")
        require(encoding_dim >= 1, key + "encoding_dim", encoding_dim, ">= 1")
        require(critic_dim >= 1, key + "critic_dim", critic_dim, ">= 1")
        if global_weight + local_weight == 0:
            raise ConfigurationError(
                "Deep InfoMax needs weights >= 0 and global_weight + local_weight > 0; got "
                f"global_weight={global_weight}, local_weight={local_weight}, prior_weight={prior_weight}."
            )
        stages = len(self.backbone.stage_dims)
        if not -stages <= local_stage < stages or local_stage % stages == stages - 1:
            raise ConfigurationError(
                f"model.local_stage={local_stage} is not a stage before the last of this {stages}-stage "
                f"backbone; use -2 (the stage before the last) or another index in [0, {stages - 2}]."
            )
        map_channels = self.backbone.stage_dims[local_stage]
        self.encoding_head = nn.Linear(self.backbone.feature_dim, encoding_dim)
        if global_weight:
            self.global_map_embedding = MapEmbedding(map_channels, critic_dim)
            self.global_encoding_embedding = ResidualEmbedding(encoding_dim, critic_dim)
            self.global_mi = InfoMaxLoss(estimator, dv_ema_rate)
        if local_weight:
            self.local_map_embedding = ResidualEmbedding(map_channels, critic_dim)
            self.local_encoding_embedding = ResidualEmbedding(encoding_dim, critic_dim)
            self.local_mi = InfoMaxLoss(estimator, dv_ema_rate)
        self.prior_matching = PriorMatching(encoding_dim) if prior_weight else None

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.prior_matching is not None and self.trainer.precision == "16-mixed":
            raise ConfigurationError(
                "Deep InfoMax's prior matching steps its discriminator outside Lightning's loss scaler; "
                "use trainer.precision bf16-mixed or 32, or set model.prior_weight: 0."
            )
        super().setup(stage)

    def training_step(self, batch, batch_idx):
        views, labels = batch
        features, maps = self.backbone.forward_with_stages(views[0])
        local_map = maps[self.hparams.local_stage]
        encoding = self.encoding_head(features)
        hparams, logs, objective = self.hparams, {}, 0.0

        if hparams.global_weight:
            global_loss, logs["train/global_mi"] = self.global_mi(
                self.global_map_embedding(local_map), self.global_encoding_embedding(encoding)
            )
            objective = objective + hparams.global_weight * global_loss
        if hparams.local_weight:
            locations = local_map.flatten(2).transpose(1, 2)
            local_loss, logs["train/local_mi"] = self.local_mi(
                self.local_map_embedding(locations), self.local_encoding_embedding(encoding)
            )
            objective = objective + hparams.local_weight * local_loss
        loss = objective + self.online_probe_step(features, labels)
        if self.prior_matching is not None:
            prior_loss, discriminator_loss = self.prior_matching(encoding)
            objective = objective + hparams.prior_weight * prior_loss
            loss = loss + hparams.prior_weight * prior_loss + discriminator_loss
            logs |= {"train/prior_loss": prior_loss.detach(), "train/discriminator_loss": discriminator_loss.detach()}

        self._optimise(loss)
        logs["train/loss"] = objective.detach()
        self.log_dict(logs, prog_bar=True, sync_dist=True)

    def _optimise(self, loss: torch.Tensor) -> None:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for optimizer in optimizers:
            optimizer.zero_grad()
        self.manual_backward(loss)
        optimizers[0].step()
        if len(optimizers) > 1:
            # The raw optimiser: every LightningOptimizer.step() counts towards global_step
            # (Lightning issue #17958), which must count batches for max_steps and schedules.
            optimizers[1].optimizer.step()
        self.lr_schedulers().step()

    def configure_optimizers(self):
        config = super().configure_optimizers()
        if self.prior_matching is None:
            return config
        discriminator_optimizer = torch.optim.Adam(self.prior_matching.parameters(), lr=self.hparams.discriminator_lr)
        return [config["optimizer"], discriminator_optimizer], [config["lr_scheduler"]]
