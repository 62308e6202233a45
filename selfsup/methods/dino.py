"""DINO: self-distillation with no labels, a student matching a momentum teacher across crops.

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021,
Algorithm 1. For a minibatch of images:

    crops = 2 global crops + N local crops of each image           data.init_args.view_groups
    t = teacher_head(teacher_backbone(global crops))              EMA copies, no gradient
    s = head(backbone(every crop))                                the student
    loss = H(softmax((t - C) / tau_t), softmax(s / tau_s))         every global crop against every other crop
    C <- m C + (1 - m) mean(t)                                      the centre, over all ranks
    optimiser step on the student (its last layer frozen in the first epochs)
    teacher <- l teacher + (1 - l) student                         l: 0.996 -> 1 on a cosine

Centring and sharpening (tau_t below tau_s) together avoid collapse (§3.1). The teacher's
temperature warms up linearly from ``warmup_teacher_temperature`` to ``teacher_temperature``
over ``warmup_teacher_temperature_epochs`` (0.04 -> 0.07 over 30 in the paper). Crops of
equal size pass through the backbone together, as in the paper's code. The teacher follows
the shell's one EMA schedule (:meth:`PretrainMethod.momentum_copy`); the loss and centre are
:class:`selfsup.losses.dino.DINOLoss`, the head :class:`selfsup.components.dino_head.DINOHead`.
Not implemented: the paper's weight-decay schedule (0.04 -> 0.4) and gradient clipping.
"""

from typing import Literal

import torch

from selfsup.components.dino_head import DINOHead
from selfsup.errors import is_finite, is_integer, require, require_sizes
from selfsup.losses.dino import DINOLoss
from selfsup.methods.base import PretrainMethod


class DINO(PretrainMethod):
    def __init__(
        self,
        *args,
        output_dim: int = 65536,
        head_hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        norm_last_layer: bool = True,
        global_crops: int = 2,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.07,
        warmup_teacher_temperature: float = 0.04,
        warmup_teacher_temperature_epochs: int = 30,
        center_momentum: float = 0.9,
        teacher_momentum: float = 0.996,
        teacher_momentum_schedule: Literal["constant", "cosine"] = "cosine",
        freeze_last_layer_epochs: int = 1,
        **kwargs,
    ) -> None:
        """DINO's heads, teacher, temperatures and centre.

        Args:
            output_dim: K, the head's logits (the paper: 65536).
            head_hidden_dim: the head's hidden width (2048).
            bottleneck_dim: its L2-normalised bottleneck (256).
            norm_last_layer: fix the last layer's weight-norm magnitude at 1 (the paper's ViT default).
            global_crops: how many of the first views are global crops, seen by the teacher (2).
            student_temperature: tau_s (0.1).
            teacher_temperature: tau_t after the warm-up (0.04-0.07).
            warmup_teacher_temperature: tau_t at epoch 0 (0.04).
            warmup_teacher_temperature_epochs: epochs of the linear warm-up of tau_t (30; 0: none).
            center_momentum: m of the centre's EMA (0.9).
            teacher_momentum: the teacher's EMA momentum at the first step (0.996).
            teacher_momentum_schedule: ``cosine`` to 1 over training (the paper's), or ``constant``.
            freeze_last_layer_epochs: epochs in which the head's last layer takes no update (1).
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        require_sizes(key, output_dim=output_dim, head_hidden_dim=head_hidden_dim, bottleneck_dim=bottleneck_dim)
        require(is_integer(global_crops) and global_crops >= 1, key + "global_crops", global_crops, "an integer >= 1")
        for name, value in (
            ("teacher_temperature", teacher_temperature),
            ("warmup_teacher_temperature", warmup_teacher_temperature),
        ):
            require(is_finite(value) and value > 0, key + name, value, "a finite number > 0")
        for name, value in (
            ("warmup_teacher_temperature_epochs", warmup_teacher_temperature_epochs),
            ("freeze_last_layer_epochs", freeze_last_layer_epochs),
        ):
            require(is_integer(value) and value >= 0, key + name, value, "an integer >= 0")
        self.head = DINOHead(self.backbone.feature_dim, output_dim, head_hidden_dim, bottleneck_dim, 3, norm_last_layer)
        momentum = dict(momentum=teacher_momentum, schedule=teacher_momentum_schedule, name="teacher_momentum")
        self.teacher_backbone = self.momentum_copy(self.backbone, **momentum)
        self.teacher_head = self.momentum_copy(self.head, **momentum)
        self.criterion = DINOLoss(output_dim, student_temperature, center_momentum)

    def require_views(self, views: int | None) -> None:
        crops = self.hparams.global_crops
        require(
            views is None or (views >= 2 and views >= crops),
            "data.init_args.num_views",
            views,
            f">= 2 and >= model.init_args.global_crops={crops} (the global crops come first)",
        )

    def training_step(self, batch, batch_idx):
        views, labels = batch
        loss, features = self.dino_objective(views, self.teacher_temperature(self.current_epoch))
        self.log("train/dino_loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        return loss + self.online_probe_step(features, labels)

    def dino_objective(
        self, views: list[torch.Tensor], teacher_temperature: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss and the student's features of the first global crop; updates the centre."""
        global_views = views[: self.hparams.global_crops]
        with torch.no_grad():
            teacher = self.teacher_head(self.teacher_backbone(torch.cat(global_views))).chunk(len(global_views))
        features = self.encode_by_size(views)
        student = [self.head(f) for f in features]
        loss = self.criterion(student, list(teacher), teacher_temperature)
        self.criterion.update_center(list(teacher))
        return loss, features[0]

    def encode_by_size(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """The backbone's features of each view; consecutive views of one size pass through together."""
        features: list[torch.Tensor] = []
        start = 0
        while start < len(views):
            end = start + 1
            while end < len(views) and views[end].shape == views[start].shape:
                end += 1
            features += list(self.backbone(torch.cat(views[start:end])).chunk(end - start))
            start = end
        return features

    def teacher_temperature(self, epoch: int) -> float:
        """tau_t: the paper's ``linspace(warm-up value, final value, warm-up epochs)``, then the final value."""
        hparams = self.hparams
        warmup = hparams.warmup_teacher_temperature_epochs
        if epoch >= warmup:
            return hparams.teacher_temperature
        start, end = hparams.warmup_teacher_temperature, hparams.teacher_temperature
        return start if warmup == 1 else start + (end - start) * epoch / (warmup - 1)

    def on_after_backward(self) -> None:
        """No update of the head's last layer in the first ``freeze_last_layer_epochs`` (the paper: 1)."""
        if self.current_epoch < self.hparams.freeze_last_layer_epochs:
            for parameter in self.head.last_layer.parameters():
                parameter.grad = None
