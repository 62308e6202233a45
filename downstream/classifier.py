"""A linear head on a backbone, for the linear probe and for fine-tuning.

* Linear probe: the backbone is frozen and stays in eval mode (its batch-norm
  statistics do not move even though Lightning calls ``train()``); with cached features
  the backbone is ``nn.Identity`` and the inputs are the features.
* Fine-tuning: the backbone trains, except its stem and first ``frozen_stages`` stages
  when that is above 0, which are frozen like the probe's backbone; per-stage learning
  rates give a separate backbone rate or layer-wise decay. The stages' parameters are
  :meth:`selfsup.backbones.Backbone.parameter_groups`, so parameters outside every stage
  module (a ViT's class token, position embedding, final norm) train too.

Test accuracy is a torchmetrics metric, synced across ranks. The per-example test losses
(cross-entropy, in dataset index order, gathered from every rank) are kept in
``test_losses`` for Taskonomy's affinity (:mod:`downstream.transferability.affinity`).
"""

import functools

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from downstream.recipes import FinetuneRecipe, LinearRecipe
from downstream.standardize import Standardization
from selfsup.errors import ConfigurationError
from selfsup.evaluation import gather_unique
from selfsup.schedules import step_decay, warmup_cosine


class FrozenBackboneChanged(RuntimeError):
    """A linear probe changed the backbone it should have left alone."""


class Classifier(pl.LightningModule):
    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: int,
        recipe: LinearRecipe | FinetuneRecipe,
        standardization: Standardization | None = None,
    ) -> None:
        """``standardization``: fitted on the training features, applied before the head (none: identity)."""
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_classes)
        self.standardize = standardization if standardization is not None else Standardization.identity(feature_dim)
        self.recipe = recipe
        self.fine_tuning = isinstance(recipe, FinetuneRecipe)
        self.frozen = self._frozen_modules()
        self.backbone.train(self.fine_tuning).requires_grad_(self.fine_tuning)
        for module in self.frozen:
            module.requires_grad_(False).eval()
        for parameter in self._frozen_parameters():
            parameter.requires_grad_(False)
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._test_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.test_losses: torch.Tensor | None = None

    def _frozen_modules(self) -> list[nn.Module]:
        if not self.fine_tuning:
            return [self.backbone]
        stages, frozen = self.backbone.stage_modules(), self.recipe.frozen_stages
        if not 0 <= frozen <= len(stages):
            raise ConfigurationError(f"finetune.frozen_stages must lie in [0, {len(stages)}], got {frozen}.")
        return self.backbone.stem_modules() + stages[:frozen] if frozen else []

    def _frozen_parameters(self) -> list[nn.Parameter]:
        """With ``frozen_stages`` k: the stem's parameters and the first k stages' (outside any module too)."""
        if not self.fine_tuning or not self.recipe.frozen_stages:
            return []
        stem, stages = self.backbone.parameter_groups()
        return stem + [p for stage in stages[: self.recipe.frozen_stages] for p in stage]

    def train(self, mode: bool = True) -> "Classifier":
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.standardize(self.backbone(inputs)))

    def training_step(self, batch, batch_idx):
        inputs, labels, _ = batch
        loss = F.cross_entropy(self(inputs), labels)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def test_step(self, batch, batch_idx) -> None:
        inputs, labels, indices = batch
        logits = self(inputs)
        self.test_accuracy.update(logits.argmax(dim=1), labels)
        self.log("test/acc", self.test_accuracy, on_step=False, on_epoch=True)
        losses = F.cross_entropy(logits.float(), labels, reduction="none")
        self._test_outputs.append((losses[:, None], labels, indices))

    def on_test_epoch_end(self) -> None:
        losses, labels, indices = map(torch.cat, zip(*self._test_outputs))
        self._test_outputs = []
        losses, _ = gather_unique(losses, labels, indices)
        self.test_losses = losses[:, 0].cpu()

    def on_fit_start(self) -> None:
        if not self.fine_tuning and self.recipe.check_frozen:
            self._snapshot = {key: value.detach().clone() for key, value in self.backbone.state_dict().items()}

    def on_fit_end(self) -> None:
        if self._snapshot is None:
            return
        changed = [
            key for key, value in self.backbone.state_dict().items() if not torch.equal(value, self._snapshot[key])
        ]
        self._snapshot = None
        if changed:
            raise FrozenBackboneChanged(f"the linear probe changed the frozen backbone: {', '.join(changed[:8])}")

    def configure_optimizers(self):
        recipe = self.recipe
        groups = [{"params": list(self.head.parameters()), "lr": recipe.lr}]
        if self.fine_tuning:
            groups += self._backbone_groups()
        optimizer = torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
        total = max(1, self.trainer.estimated_stepping_batches)
        if self.fine_tuning or recipe.schedule == "cosine":
            factor = functools.partial(warmup_cosine, warmup_steps=0, total_steps=total)
        else:
            factor = functools.partial(step_decay, total_steps=total)  # MoCo: / 10 at 60% and 80%
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def _backbone_groups(self) -> list[dict]:
        """Stage s of S trains at backbone_lr x layer_decay^(S - s); the stem one step lower."""
        recipe = self.recipe
        stem, stages = self.backbone.parameter_groups()
        base_lr = recipe.backbone_lr if recipe.backbone_lr is not None else recipe.lr
        decay = recipe.layer_decay if recipe.layer_decay is not None else 1.0
        groups = [
            {"params": stage, "lr": base_lr * decay ** (len(stages) - index)}
            for index, stage in enumerate(stages)
            if index >= recipe.frozen_stages
        ]
        if recipe.frozen_stages == 0:
            groups.append({"params": stem, "lr": base_lr * decay ** (len(stages) + 1)})
        return [group for group in groups if group["params"]]
