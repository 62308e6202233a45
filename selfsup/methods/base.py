"""The training shell every pretraining method builds on.

It owns what all methods share, so that a method file holds only its heads and
its ``training_step``:

* the backbone, built by name (``backbone``, ``backbone_kwargs``);
* the optimiser (SGD, AdamW or LARS) with biases and norms excluded from weight
  decay, the learning rate scaled to the global batch size, and a per-step linear
  warm-up followed by a cosine decay;
* two online monitors of representation quality, neither of which trains the
  backbone: a linear probe on detached features (trained alongside, evaluated on
  the validation split) and a weighted kNN classifier (bank: labelled training
  images; queries: the validation split). Both gather features from every rank
  and count each sample once, so their accuracy is the same on any number of
  devices;
* export of the bare backbone weights to ``<default_root_dir>/backbone.pt`` when
  fitting ends;
* what makes a resumed run the same run: checkpoints carry every rank's random
  generators, restored with the weights (validation loaders draw nothing from them,
  so nothing else does before training resumes); a checkpoint of another
  architecture is refused, with the differing weights named;
* two speed switches: ``channels_last`` (NHWC weights; convolutions then return
  NHWC activations) and ``compile_backbone`` (``torch.compile`` of the backbone's
  forward, in place, so weights and checkpoints keep their names); bf16 autocast is
  Lightning's ``trainer.precision: bf16-mixed``;
* a guard against a non-finite loss: all ranks agree, then either stop with a
  message naming the step (no update is made and no checkpoint written after it)
  or, with ``non_finite_loss="skip"``, skip that batch's update.
"""

import math
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from selfsup import random_state
from selfsup.backbones import build_backbone
from selfsup.checkpoints import export_backbone, preview_keys
from selfsup.distributed import all_gather_objects, rank
from selfsup.errors import ConfigurationError, NonFiniteLossError
from selfsup.evaluation import gather_unique, weighted_knn_predict
from selfsup.optim import LARS, decay_groups, scaled_learning_rate, warmup_cosine

BANK, QUERIES = 0, 1


class PretrainMethod(pl.LightningModule):
    """Base of all pretraining methods; see the module docstring for what it owns."""

    #: Children trained by an optimiser of their own, which the method adds in its
    #: ``configure_optimizers``; the shared optimiser leaves them alone.
    separately_optimised: tuple[str, ...] = ()

    def __init__(
        self,
        backbone: str = "resnet18",
        backbone_kwargs: dict | None = None,
        num_classes: int = 10,
        optimizer: Literal["sgd", "adamw", "lars"] = "sgd",
        lr: float = 0.3,
        lr_scaling: Literal["linear", "sqrt", "none"] = "linear",
        reference_batch_size: int = 256,
        weight_decay: float = 1e-6,
        momentum: float = 0.9,
        warmup_epochs: float = 10.0,
        final_lr_fraction: float = 0.0,
        exclude_bias_and_norm: bool = True,
        probe_lr: float = 0.1,
        knn_k: int = 20,
        knn_temperature: float = 0.07,
        non_finite_loss: Literal["stop", "skip"] = "stop",
        channels_last: bool = False,
        compile_backbone: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if lr <= 0 or probe_lr <= 0:
            raise ConfigurationError(f"model.lr and model.probe_lr must be > 0, got {lr} and {probe_lr}.")
        if knn_k < 1 or knn_temperature <= 0:
            raise ConfigurationError(
                f"model.knn_k must be >= 1 and model.knn_temperature > 0, got {knn_k}, {knn_temperature}."
            )
        self.backbone = build_backbone(backbone, **(backbone_kwargs or {}))
        self.online_probe = nn.Linear(self.backbone.feature_dim, num_classes)
        self._val_outputs: dict[int, list] = {BANK: [], QUERIES: []}

    def setup(self, stage: str) -> None:
        batch_size = self._per_device_batch_size() if stage == "fit" else None
        if batch_size is not None and batch_size < 2:
            raise ConfigurationError(
                f"{type(self).__name__} needs at least 2 images per batch on each device (batch norm and "
                f"contrastive negatives come from the other images); got data.batch_size={batch_size}."
            )
        if stage == "fit":
            self.apply_speed_switches()

    def apply_speed_switches(self) -> None:
        """``channels_last`` and ``compile_backbone``, applied once before training."""
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.hparams.compile_backbone and self.backbone._compiled_call_impl is None:
            self.backbone.compile()

    def online_probe_step(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Train the online linear probe on detached features; labels of -1 are ignored.

        Return its loss, to be added to the method's loss: the gradient reaches only
        the probe, never the backbone.
        """
        labelled = labels >= 0
        if not labelled.any():
            return features.new_zeros(())
        logits = self.online_probe(features.detach()[labelled])
        loss = F.cross_entropy(logits, labels[labelled])
        accuracy = (logits.argmax(dim=1) == labels[labelled]).float().mean()
        self.log_dict({"train/probe_loss": loss, "train/probe_acc": accuracy}, on_step=True, on_epoch=False)
        return loss

    def backward(self, loss: torch.Tensor, *args, **kwargs) -> None:
        """Back-propagate ``loss`` unless it is non-finite on any rank (see ``non_finite_loss``).

        A skipped backward pass leaves every gradient ``None``, so the optimisers that
        step after it leave the weights and their own state unchanged.
        """
        non_finite = torch.tensor(float(not torch.isfinite(loss.detach()).all()), device=loss.device)
        if self.trainer.strategy.reduce(non_finite, reduce_op="max").item() == 0:
            super().backward(loss, *args, **kwargs)
            return
        where = f"step {self.global_step} (epoch {self.current_epoch})"
        if self.hparams.non_finite_loss == "skip":
            self.log("train/skipped_batches", 1.0, on_step=False, on_epoch=True, reduce_fx="sum")
            pl.utilities.rank_zero_warn(f"{type(self).__name__}: non-finite loss at {where}; batch skipped.")
            return
        callbacks = self.trainer.checkpoint_callbacks
        kept = sorted({path for c in callbacks for path in (c.best_model_path, c.last_model_path) if path})
        value = loss.detach().sum().item()
        value = "non-finite on another rank" if math.isfinite(value) else value
        raise NonFiniteLossError(
            f"{type(self).__name__}: the loss is {value} at {where}; training stopped "
            f"before updating the weights. Checkpoints kept: {', '.join(kept) or 'none written yet'}. "
            "Lower model.init_args.lr or raise the temperature, or set model.init_args.non_finite_loss: "
            "skip to skip such batches."
        )

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)

    def on_validation_epoch_start(self) -> None:
        self._val_outputs = {BANK: [], QUERIES: []}

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels, indices = batch
        self._val_outputs[dataloader_idx].append((self.backbone(images), labels, indices))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not all(self._val_outputs.values()):
            return
        bank_features, bank_labels = gather_unique(*map(torch.cat, zip(*self._val_outputs[BANK])))
        features, labels = gather_unique(*map(torch.cat, zip(*self._val_outputs[QUERIES])))
        self._val_outputs = {BANK: [], QUERIES: []}
        knn = weighted_knn_predict(
            bank_features,
            bank_labels,
            features,
            self.hparams.num_classes,
            self.hparams.knn_k,
            self.hparams.knn_temperature,
        )
        linear = self.online_probe(features).argmax(dim=1)
        self.log_dict(
            {"val/knn_acc": (knn == labels).float().mean(), "val/linear_acc": (linear == labels).float().mean()},
            prog_bar=True,
            sync_dist=True,
        )

    def configure_optimizers(self):
        hparams = self.hparams
        global_batch = self._per_device_batch_size() * self.trainer.world_size * self.trainer.accumulate_grad_batches
        lr = scaled_learning_rate(hparams.lr, global_batch, hparams.lr_scaling, hparams.reference_batch_size)
        excluded = {"online_probe", *self.separately_optimised}
        trained = nn.ModuleList(child for name, child in self.named_children() if name not in excluded)
        groups = decay_groups(trained, hparams.weight_decay, hparams.exclude_bias_and_norm)
        groups.append(
            {
                "params": self.online_probe.parameters(),
                "weight_decay": 0.0,
                "lr": hparams.probe_lr,
                "exclude_from_lars": True,
            }
        )
        if hparams.optimizer == "sgd":
            optimizer = torch.optim.SGD(_without_lars_flag(groups), lr=lr, momentum=hparams.momentum)
        elif hparams.optimizer == "adamw":
            optimizer = torch.optim.AdamW(_without_lars_flag(groups), lr=lr)
        else:
            optimizer = LARS(groups, lr=lr, momentum=hparams.momentum)

        total_steps = max(1, self.trainer.estimated_stepping_batches)
        steps_per_epoch = total_steps / max(1, self.trainer.max_epochs or 1)
        warmup_steps = round(hparams.warmup_epochs * steps_per_epoch)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps, hparams.final_lr_fraction)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Record every rank's random generators, and the input format for downstream code."""
        checkpoint["random_states"] = all_gather_objects(random_state.capture())
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            checkpoint["input_format"] = _input_format(datamodule)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse weights of another architecture; restore every rank's random generators."""
        expected = {name: tuple(value.shape) for name, value in self.state_dict().items()}
        found = {name: tuple(value.shape) for name, value in checkpoint.get("state_dict", {}).items()}
        if expected != found:
            missing = sorted(expected.keys() - found.keys())
            unexpected = sorted(found.keys() - expected.keys())
            reshaped = sorted(n for n in expected.keys() & found.keys() if expected[n] != found[n])
            raise ConfigurationError(
                f"the checkpoint does not belong to this {type(self).__name__} with backbone "
                f"{self.hparams.backbone!r} {self.hparams.backbone_kwargs or {}}: missing {preview_keys(missing)}, "
                f"unexpected {preview_keys(unexpected)}, other shapes {preview_keys(reshaped)}. Resume with the "
                "config the checkpoint was written with (config.yaml in its run directory)."
            )
        states = checkpoint.get("random_states")
        if states:
            random_state.restore(states[rank() % len(states)])

    def on_fit_end(self) -> None:
        if self.trainer.is_global_zero:
            export_backbone(
                Path(self.trainer.default_root_dir) / "backbone.pt",
                self.backbone,
                self.hparams.backbone,
                self.hparams.backbone_kwargs,
                method=type(self).__name__,
                global_step=self.global_step,
                epoch=self.current_epoch,
                **_input_format(self.trainer.datamodule),
            )

    def _per_device_batch_size(self) -> int:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "batch_size"):
            raise ConfigurationError("pretraining methods need a datamodule with a batch_size (see selfsup.data).")
        return datamodule.batch_size


def _input_format(datamodule) -> dict:
    """What downstream code needs to feed the backbone images as it saw them."""
    return {key: getattr(datamodule, key) for key in ("image_size", "mean", "std") if hasattr(datamodule, key)}


def _without_lars_flag(groups: list[dict]) -> list[dict]:
    return [{key: value for key, value in group.items() if key != "exclude_from_lars"} for group in groups]
