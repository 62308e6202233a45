"""Denoising autoencoder: reconstruct the clean image from a corrupted copy.

Vincent, Larochelle, Bengio & Manzagol, "Extracting and Composing Robust Features with
Denoising Autoencoders", ICML 2008; Vincent et al., "Stacked Denoising Autoencoders",
JMLR 2010 (textbook §6.2.3, the generative approach). For a minibatch of N images x:

    x~ ~ q(x~ | x)        corruption (``corruption``): masking noise (a fraction of the pixels
                          set to ``mask_fill``), additive Gaussian noise, or MAE-like blocks
    h  = f(x~)            the backbone's map at stage ``encoder_stage``: the encoder
    x^ = g(h)             a light convolutional decoder (:class:`ConvDecoder`) back to the image
    loss = ||x^ - x||^2   mean squared error to the *clean* image, on normalised pixels, over
                          all pixels or (``loss_on_corrupted_only``) the corrupted ones only

The exported backbone is the encoder; downstream evaluation reads it like any checkpoint.
With ``encoder_stage`` before the last, the later stages are never trained: evaluate that
stage's map (a stage probe) rather than the pooled last stage.

Greedy layer-wise training (``greedy_stages: true``), the stacked scheme of Vincent et al.
2010, sec. 3.5 (after Bengio et al. 2007), on an epoch schedule:

    epochs [s * E, (s + 1) * E), for s = 0 .. encoder_stage (E = ``epochs_per_stage``):
        train stage s and its own decoder g_s; the stem and the stages before s are frozen
        (no gradient, batch norm in eval mode); stage 0 trains with the stem
    afterwards: with ``finetune_end_to_end`` the whole encoder and the top decoder train
        together (the unrolled fine-tuning of Hinton & Salakhutdinov 2006); otherwise the
        last stage keeps training alone

One deviation from the paper, to keep a single corruption and a single pixel loss that
work with any backbone (only ``forward_stages`` is needed): the paper corrupts each
layer's clean *input* and reconstructs that input, whereas here every stage's decoder
reconstructs the clean *image* from the stage's map of the corrupted image, computed
through the frozen stages below. The shell's optimiser holds every parameter; a frozen
one gets no gradient (``requires_grad`` off) and so is left bit-identical by the step.
The learning-rate schedule spans the whole run, phases included. Under DDP, parameters
without a gradient (greedy phases, stages after ``encoder_stage``) need
``trainer.strategy: ddp_find_unused_parameters_true``.

The online probe trains on the corrupted view's pooled last-stage features (corruption
is one more augmentation for it); the monitors evaluate clean validation images.
"""

import torch
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn
from torch import nn

from selfsup.components.decoder import ConvDecoder, upsampling_steps
from selfsup.errors import ConfigurationError, is_finite, is_integer, require, require_sizes
from selfsup.methods.base import PretrainMethod
from selfsup.pretext.corruption import CORRUPTIONS, Corruption, corrupt

#: Decoder width when ``decoder_width`` is null: the encoder stage's channels, at most this many.
MAX_DEFAULT_DECODER_WIDTH = 256


def reconstruction_loss(
    reconstruction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error over every pixel and channel, or over the corrupted pixels only.

    ``mask`` (``(B, 1, H, W)`` booleans, True where corrupted) restricts the mean to the
    corrupted pixels, all their channels; with no corrupted pixel the loss is 0.
    """
    squared = (reconstruction.float() - target.float()).pow(2)
    if mask is None:
        return squared.mean()
    weights = mask.to(squared.dtype).expand_as(squared)
    return (squared * weights).sum() / weights.sum().clamp_min(1.0)


class DenoisingAutoencoder(PretrainMethod):
    def __init__(
        self,
        *args,
        image_size: int = 224,
        encoder_stage: int = -1,
        corruption: Corruption = "masking",
        mask_fraction: float = 0.25,
        noise_std: float = 0.5,
        patch_size: int = 16,
        mask_fill: float = 0.0,
        loss_on_corrupted_only: bool = False,
        decoder_width: int | None = None,
        greedy_stages: bool = False,
        epochs_per_stage: int = 1,
        finetune_end_to_end: bool = True,
        **kwargs,
    ) -> None:
        """The corruption, the decoder(s) and the greedy schedule.

        Args:
            image_size: the side of the training views (data.init_args.image_size); sizes the decoder.
            encoder_stage: the backbone stage whose map the decoder reads (-1: the last).
            corruption: ``masking`` (Vincent 2008), ``gaussian`` (additive noise) or ``patch`` (MAE-like blocks).
            mask_fraction: the fraction of pixels (``masking``) or blocks (``patch``) set to ``mask_fill``.
            noise_std: the standard deviation of ``gaussian`` noise, in normalised units.
            patch_size: the side of the ``patch`` blocks, in pixels.
            mask_fill: the value of masked pixels, normalised (0: the network's input is zero, the mean colour).
            loss_on_corrupted_only: average the squared error over the corrupted pixels only.
            decoder_width: channels of the decoder's first block; null: the stage's channels, at most 256.
            greedy_stages: train stage 0, then 1, ... up to ``encoder_stage``, each with its own decoder.
            epochs_per_stage: epochs of each greedy phase.
            finetune_end_to_end: after the greedy phases, train the whole encoder with the top decoder.
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        stages = len(self.backbone.stage_dims)
        require(is_integer(image_size) and image_size >= 1, key + "image_size", image_size, "an integer >= 1 (pixels)")
        require(
            is_integer(encoder_stage) and -stages <= encoder_stage < stages,
            key + "encoder_stage",
            encoder_stage,
            f"a stage of this {stages}-stage backbone, an integer in [{-stages}, {stages - 1}]",
        )
        require(corruption in CORRUPTIONS, key + "corruption", corruption, f"one of {list(CORRUPTIONS)}")
        require(is_finite(mask_fraction) and 0 <= mask_fraction <= 1, key + "mask_fraction", mask_fraction, "in [0, 1]")
        require(is_finite(noise_std) and noise_std >= 0, key + "noise_std", noise_std, "a finite number >= 0")
        require(
            is_integer(patch_size) and patch_size >= 1 and (corruption != "patch" or patch_size <= image_size),
            key + "patch_size",
            patch_size,
            f"an integer in [1, image_size={image_size}] (pixels)",
        )
        require(is_finite(mask_fill), key + "mask_fill", mask_fill, "a finite number (normalised units)")
        for name, value in (
            ("loss_on_corrupted_only", loss_on_corrupted_only),
            ("greedy_stages", greedy_stages),
            ("finetune_end_to_end", finetune_end_to_end),
        ):
            require(isinstance(value, bool), key + name, value, "true or false")
        require(
            decoder_width is None or (is_integer(decoder_width) and decoder_width >= 1),
            key + "decoder_width",
            decoder_width,
            "null or an integer >= 1",
        )
        require_sizes(key, epochs_per_stage=epochs_per_stage)
        require(
            not (loss_on_corrupted_only and corruption != "gaussian" and mask_fraction == 0),
            key + "loss_on_corrupted_only",
            loss_on_corrupted_only,
            "false when mask_fraction is 0 (no pixel is corrupted, so nothing would train)",
        )
        self.encoder_stage = encoder_stage % stages
        self._announced_phase: tuple[int | None] | None = None
        image_channels = next((m.in_channels for m in self.backbone.modules() if isinstance(m, nn.Conv2d)), 3)
        map_sizes = _stage_map_sizes(self.backbone, image_size, image_channels)
        decoded = range(self.encoder_stage + 1) if greedy_stages else (self.encoder_stage,)
        self.decoders = nn.ModuleDict(
            {
                str(stage): ConvDecoder(
                    self.backbone.stage_dims[stage],
                    upsampling_steps(map_sizes[stage], image_size),
                    width=decoder_width or min(self.backbone.stage_dims[stage], MAX_DEFAULT_DECODER_WIDTH),
                    out_channels=image_channels,
                )
                for stage in decoded
            }
        )

    # --- the greedy schedule -------------------------------------------------------------

    def greedy_stage(self, epoch: int) -> int | None:
        """The stage trained alone at ``epoch``, or None when the whole encoder trains."""
        if not self.hparams.greedy_stages:
            return None
        phase = epoch // self.hparams.epochs_per_stage
        if phase <= self.encoder_stage:
            return phase
        return None if self.hparams.finetune_end_to_end else self.encoder_stage

    def train_only(self, stage: int | None) -> None:
        """Let only stage ``stage``'s parameters get gradients (with 0, the stem's too): ``parameter_groups``.

        The stem and the stages before ``stage`` also run in eval mode, so that their
        batch-norm statistics stay as they were; the stages after it get no gradient
        either (their output is not used). ``None`` makes every backbone parameter
        trainable again.
        """
        self.backbone.train(self.training)
        if stage is None:
            self.backbone.requires_grad_(True)
            return
        stem, stages = self.backbone.parameter_groups()
        trained = {id(parameter) for parameter in stages[stage] + (stem if stage == 0 else [])}
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(id(parameter) in trained)
        if stage > 0 and self.training:
            for module in [*self.backbone.stem_modules(), *self.backbone.stage_modules()[:stage]]:
                module.eval()

    # --- training ------------------------------------------------------------------------

    def corrupt(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The corrupted images and the mask of corrupted pixels (torch's global generator)."""
        hparams = self.hparams
        return corrupt(
            images, hparams.corruption, hparams.mask_fraction, hparams.noise_std, hparams.patch_size, hparams.mask_fill
        )

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's map: the backbone's stage ``encoder_stage``."""
        return self.backbone.forward_stages(images)[self.encoder_stage]

    def training_step(self, batch, batch_idx):
        views, labels = batch
        images = views[0]
        if images.shape[-1] != self.hparams.image_size:
            raise ConfigurationError(
                f"model.init_args.image_size={self.hparams.image_size} sizes the decoder, but the training views are "
                f"{images.shape[-1]} pixels wide; set it to data.init_args.image_size."
            )
        greedy = self.greedy_stage(self.current_epoch)
        stage = self.encoder_stage if greedy is None else greedy
        self.train_only(greedy)

        corrupted, mask = self.corrupt(images)
        features, maps = self.backbone.forward_with_stages(corrupted)
        reconstruction = self.decoders[str(stage)](maps[stage], images.shape[-2:])
        loss = reconstruction_loss(reconstruction, images, mask if self.hparams.loss_on_corrupted_only else None)

        logs = {"train/reconstruction_loss": loss}
        if self.hparams.greedy_stages:
            logs["train/greedy_stage"] = float(-1 if greedy is None else greedy)
        self.log_dict(logs, prog_bar=True, sync_dist=True)
        return loss + self.online_probe_step(features, labels)

    def on_train_epoch_start(self) -> None:
        """Say when a greedy phase begins (and at the start of a fit, resumed or not)."""
        stage = self.greedy_stage(self.current_epoch)
        if self.hparams.greedy_stages and self._announced_phase != (stage,):
            self._announced_phase = (stage,)
            what = "the whole encoder (end to end)" if stage is None else f"stage {stage} alone"
            rank_zero_info(f"DenoisingAutoencoder: from epoch {self.current_epoch}, training {what}.")

    def on_train_end(self) -> None:
        self.train_only(None)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage != "fit":
            return
        strategy = self.trainer.strategy
        unused = self.hparams.greedy_stages or self.encoder_stage != len(self.backbone.stage_dims) - 1
        if (
            unused
            and isinstance(strategy, DDPStrategy)
            and not getattr(strategy, "_ddp_kwargs", {}).get("find_unused_parameters", False)
        ):
            raise ConfigurationError(
                "DenoisingAutoencoder leaves parameters without a gradient (greedy_stages, or stages after "
                "encoder_stage), which DDP refuses; set trainer.strategy: ddp_find_unused_parameters_true."
            )
        greedy_epochs = (self.encoder_stage + 1) * self.hparams.epochs_per_stage
        max_epochs = self.trainer.max_epochs
        if self.hparams.greedy_stages and max_epochs is not None and 1 <= max_epochs < greedy_epochs:
            first_untrained = (max_epochs - 1) // self.hparams.epochs_per_stage + 1
            rank_zero_warn(
                f"DenoisingAutoencoder: the greedy phases take {greedy_epochs} epochs but trainer.max_epochs is "
                f"{max_epochs}, so stages {first_untrained} to {self.encoder_stage} are never trained."
            )

    def configure_optimizers(self):
        self.backbone.requires_grad_(True)  # the shell's optimiser takes only trainable parameters
        return super().configure_optimizers()


def _stage_map_sizes(backbone: nn.Module, image_size: int, channels: int) -> list[int]:
    """The side of every stage's map for one ``image_size`` image (a probe in eval mode, no gradient)."""
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            maps = backbone.forward_stages(torch.zeros(1, channels, image_size, image_size))
    except (AssertionError, RuntimeError, ValueError) as error:
        raise ConfigurationError(
            f"model.init_args.image_size={image_size}: the backbone cannot encode images of that size "
            f"({str(error).splitlines()[0]}); use the size it takes (a ViT's backbone_kwargs.image_size), "
            "the same as data.init_args.image_size."
        ) from None
    finally:
        backbone.train(was_training)
    return [int(stage_map.shape[-1]) for stage_map in maps]
