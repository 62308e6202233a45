"""The training shell every pretraining method builds on.

It owns what all methods share, so that a method file holds only its heads and
its ``training_step``:

* the backbone, built by name (``backbone``, ``backbone_kwargs``);
* the optimiser (SGD, AdamW or LARS) with biases and norms excluded from weight
  decay, the learning rate scaled to the global batch size, and a per-step linear
  warm-up followed by a cosine decay;
* two online monitors of representation quality (:mod:`selfsup.components.monitors`),
  neither of which trains the backbone: a linear probe on detached features (trained
  alongside, evaluated on the validation queries) and a weighted kNN classifier. The
  datamodule names its validation loaders ``knn_bank`` (labelled training images) and
  ``knn_queries`` (the validation split); features are gathered from every rank and
  each sample counted once, so both read the same on any number of devices;
* a checkpoint of another architecture is refused on resume, with the differing
  weights named;
* two speed switches: ``channels_last`` (NHWC weights; convolutions then return
  NHWC activations) and ``compile_backbone`` (``torch.compile`` of the backbone's
  forward, in place, so weights and checkpoints keep their names); bf16 autocast is
  Lightning's ``trainer.precision: bf16-mixed``;
* the momentum (EMA) targets of MoCo, BYOL and their kin: :meth:`PretrainMethod.momentum_copy`
  makes a frozen copy of a module that follows it right after every optimiser step, with one
  momentum and one schedule per method (:func:`selfsup.schedules.cosine_momentum`);
* a guard against a non-finite loss: all ranks agree, then either stop with a
  message naming the step (no update is made and no checkpoint written after it)
  or, with ``non_finite_loss="skip"``, skip that batch's update.

What a run does around the method (``backbone.pt``, the random generators and the
input format in checkpoints, SLURM requeue) lives in :mod:`selfsup.runtime`.
"""

import copy
import math
from typing import Literal

import pytorch_lightning as pl
import torch
from torch import nn

from selfsup.backbones import build_backbone
from selfsup.checkpoints import preview_keys
from selfsup.components.ema import ema_update
from selfsup.components.monitors import KNNMonitor, OnlineLinearProbe, ValidationFeatures
from selfsup.errors import ConfigurationError, NonFiniteLossError, is_finite, require
from selfsup.optim import LARS, decay_groups
from selfsup.schedules import cosine_between, cosine_momentum, scaled_learning_rate, warmup_cosine

#: The names of the validation loaders the datamodule provides for the monitors.
KNN_BANK, KNN_QUERIES = "knn_bank", "knn_queries"


class PretrainMethod(pl.LightningModule):
    """Base of all pretraining methods; see the module docstring for what it owns."""

    #: Children trained by an optimiser of their own, which the method adds in its
    #: ``configure_optimizers``; the shared optimiser leaves them alone.
    separately_optimised: tuple[str, ...] = ()
    #: Views of each image a training batch must hold (2 for the methods that compare views).
    views_needed: int = 1

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
        final_weight_decay: float | None = None,
        momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
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
        """The settings every method shares.

        Args:
            backbone: the registered backbone name (``selfsup.backbones.BACKBONES``).
            backbone_kwargs: the backbone's constructor arguments, e.g. ``{cifar_stem: true}``.
            num_classes: classes of the online monitors (linked from the datamodule by the CLI).
            optimizer: ``sgd``, ``adamw`` or ``lars``; biases and norms are excluded from decay and LARS.
            lr: the peak learning rate at ``reference_batch_size``, scaled by ``lr_scaling``.
            lr_scaling: ``linear`` (lr x B/reference), ``sqrt`` or ``none``, B the global batch.
            reference_batch_size: the batch size ``lr`` is given for.
            weight_decay: L2 decay of the weights (not biases and norms with ``exclude_bias_and_norm``).
            final_weight_decay: the decay at the end of training, reached along a half cosine from
                ``weight_decay`` per step (DINO: 0.04 -> 0.4); ``None``: constant.
            momentum: SGD/LARS momentum.
            betas: AdamW's (beta1, beta2); MAE uses (0.9, 0.95).
            warmup_epochs: linear warm-up, per step, before the cosine decay.
            final_lr_fraction: the cosine ends at this fraction of the peak.
            exclude_bias_and_norm: no weight decay and no LARS adaptation for 1-d parameters.
            probe_lr: learning rate of the online linear probe (no decay, no scaling).
            knn_k: neighbours of the online kNN monitor.
            knn_temperature: temperature of the kNN monitor's exp(cos / T) weights.
            non_finite_loss: ``stop`` (exit code 3) or ``skip`` the batch when the loss is NaN or infinite.
            channels_last: NHWC weights and activations (faster convolutions on recent GPUs).
            compile_backbone: ``torch.compile`` the backbone's forward (checkpoint names unchanged).
        """
        super().__init__()
        self.save_hyperparameters()
        key = "model.init_args."
        for name, value in (("lr", lr), ("probe_lr", probe_lr), ("knn_temperature", knn_temperature)):
            require(is_finite(value) and value > 0, key + name, value, "a finite number > 0")
        for name, value in (("weight_decay", weight_decay), ("warmup_epochs", warmup_epochs)):
            require(is_finite(value) and value >= 0, key + name, value, "a finite number >= 0")
        require(is_finite(momentum) and 0 <= momentum < 1, key + "momentum", momentum, "in [0, 1)")
        require(
            isinstance(betas, (list, tuple)) and len(betas) == 2 and all(is_finite(b) and 0 <= b < 1 for b in betas),
            key + "betas",
            betas,
            "two numbers in [0, 1)",
        )
        require(
            final_weight_decay is None or is_finite(final_weight_decay) and final_weight_decay >= 0,
            key + "final_weight_decay",
            final_weight_decay,
            "null or a finite number >= 0",
        )
        require(
            is_finite(final_lr_fraction) and 0 <= final_lr_fraction <= 1,
            key + "final_lr_fraction",
            final_lr_fraction,
            "in [0, 1]",
        )
        require(reference_batch_size >= 1, key + "reference_batch_size", reference_batch_size, ">= 1")
        require(knn_k >= 1, key + "knn_k", knn_k, ">= 1 (the neighbours that vote)")
        self.backbone = build_backbone(backbone, **(backbone_kwargs or {}))
        self.online_probe = OnlineLinearProbe(self.backbone.feature_dim, num_classes)
        self.knn_monitor = KNNMonitor(num_classes, knn_k, knn_temperature)
        self.validation_features = ValidationFeatures((KNN_BANK, KNN_QUERIES))
        self._momentum_pairs: list[tuple[nn.Module, nn.Module]] = []
        self._momentum: tuple[float, str] | None = None

    def momentum_copy(self, online: nn.Module, momentum: float, schedule: str = "cosine", name: str = "") -> nn.Module:
        """A frozen copy of ``online`` that follows it by EMA after every optimiser step.

        ``target <- m target + (1 - m) online`` (MoCo eq. 2, BYOL §3.1), with m = ``momentum``
        throughout (``constant``) or rising from it to 1 along a half cosine over training
        (``cosine``, BYOL's and DINO's). Every copy of a method shares one momentum and one
        schedule. The copy's parameters take no gradient; its buffers (batch-norm statistics)
        are its own. Assign the copy to an attribute, so that it is saved in checkpoints.

        Args:
            online: the module to follow.
            momentum: m at the first step, in [0, 1].
            schedule: ``constant`` or ``cosine``.
            name: the config key of ``momentum`` in messages (e.g. ``target_momentum``).
        """
        key = "model.init_args." + (name or "momentum")
        require(is_finite(momentum) and 0 <= momentum <= 1, key, momentum, "in [0, 1]")
        require(schedule in ("constant", "cosine"), key + "_schedule", schedule, "constant or cosine")
        if self._momentum not in (None, (float(momentum), schedule)):
            raise ValueError(f"one momentum schedule per method: {self._momentum} and {(momentum, schedule)}")
        self._momentum = (float(momentum), schedule)
        target = copy.deepcopy(online).requires_grad_(False)
        self._momentum_pairs.append((target, online))
        return target

    def current_momentum(self) -> float:
        """The momentum of this step's EMA update: the schedule at the step count once this step is done."""
        momentum, schedule = self._momentum
        if schedule == "constant":
            return momentum
        return cosine_momentum(self.trainer.global_step + 1, self.trainer.estimated_stepping_batches, momentum)

    def current_weight_decay(self) -> float:
        """The decayed group's weight decay at this step: ``weight_decay`` -> ``final_weight_decay`` on a cosine."""
        hparams = self.hparams
        total = self.trainer.estimated_stepping_batches
        return cosine_between(self.trainer.global_step, total, hparams.weight_decay, hparams.final_weight_decay)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        """The optimiser's step, then the momentum targets' EMA.

        Here, not in a batch-end hook: callbacks' batch-end hooks run before the module's, so a
        checkpoint saved there (every N steps, SLURM's requeue) would hold the targets of the
        step before. Lightning calls this once per real step (not while accumulating). A method
        that optimises by hand (``automatic_optimization = False``) calls
        :meth:`update_momentum_targets` itself.
        """
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self._momentum_pairs:
            self.update_momentum_targets(self.current_momentum())

    @torch.no_grad()
    def update_momentum_targets(self, momentum: float) -> None:
        """``target <- m target + (1 - m) online`` for every copy made by :meth:`momentum_copy`."""
        for target, online in self._momentum_pairs:
            ema_update(target, online, momentum)

    def setup(self, stage: str) -> None:
        batch_size = self._per_device_batch_size() if stage == "fit" else None
        if batch_size is not None and batch_size < 2:
            raise ConfigurationError(
                f"{type(self).__name__} needs at least 2 images per batch on each device (batch norm and "
                f"contrastive negatives come from the other images); got data.batch_size={batch_size}."
            )
        if stage == "fit":
            self.require_views(getattr(getattr(self.trainer, "datamodule", None), "num_views", None))
            self.apply_speed_switches()

    def require_views(self, views: int | None) -> None:
        """Refuse a datamodule with fewer than :attr:`views_needed` views per image (None: unknown, allowed)."""
        needed = self.views_needed
        why = f"{type(self).__name__} compares {needed} views of each image"
        require(views is None or views >= needed, "data.init_args.num_views", views, f">= {needed} ({why})")

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
        result = self.online_probe.loss_and_accuracy(features, labels)
        if result is None:
            return features.new_zeros(())
        loss, accuracy = result
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
        if self.hparams.get("final_weight_decay") is not None:
            decay = self.current_weight_decay()
            for group in self.trainer.optimizers[0].param_groups:
                if group.get("scheduled_weight_decay"):
                    group["weight_decay"] = decay
            self.log("train/weight_decay", decay, on_step=True, on_epoch=False)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)
        if self._momentum_pairs:
            self.log("train/momentum", self.current_momentum(), on_step=True, on_epoch=False)

    def on_validation_epoch_start(self) -> None:
        self.validation_features.reset()

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels, indices = batch
        loaders = self.trainer.val_dataloaders
        names = list(loaders) if isinstance(loaders, dict) else [KNN_BANK, KNN_QUERIES]  # a list: by position
        self.validation_features.add(names[dataloader_idx], self.backbone(images), labels, indices)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self.validation_features.complete():
            return
        bank = self.validation_features.gathered(KNN_BANK)
        queries = self.validation_features.gathered(KNN_QUERIES)
        self.validation_features.reset()
        accuracies = {
            "val/knn_acc": self.knn_monitor.accuracy(bank, queries),
            "val/linear_acc": self.online_probe.accuracy(*queries),
        }
        self.log_dict(accuracies, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        hparams = self.hparams
        global_batch = self._per_device_batch_size() * self.trainer.world_size * self.trainer.accumulate_grad_batches
        lr = scaled_learning_rate(hparams.lr, global_batch, hparams.lr_scaling, hparams.reference_batch_size)
        excluded = {"online_probe", *self.separately_optimised}
        trained = nn.ModuleList(child for name, child in self.named_children() if name not in excluded)
        groups = decay_groups(trained, hparams.weight_decay, hparams.exclude_bias_and_norm)
        groups[0]["scheduled_weight_decay"] = True  # the decayed group: final_weight_decay moves its decay
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
            optimizer = torch.optim.AdamW(_without_lars_flag(groups), lr=lr, betas=tuple(hparams.betas))
        else:
            optimizer = LARS(groups, lr=lr, momentum=hparams.momentum)

        total_steps = max(1, self.trainer.estimated_stepping_batches)
        steps_per_epoch = total_steps / max(1, self.trainer.max_epochs or 1)
        warmup_steps = round(hparams.warmup_epochs * steps_per_epoch)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps, hparams.final_lr_fraction)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse weights of another architecture, naming them."""
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

    def _per_device_batch_size(self) -> int:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "batch_size"):
            raise ConfigurationError("pretraining methods need a datamodule with a batch_size (see selfsup.data).")
        return datamodule.batch_size


def _without_lars_flag(groups: list[dict]) -> list[dict]:
    return [{key: value for key, value in group.items() if key != "exclude_from_lars"} for group in groups]
