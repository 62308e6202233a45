"""What downstream code needs from a pretraining run: the input format and the bare backbone."""

from pathlib import Path

import pytorch_lightning as pl

from selfsup.checkpoints import INPUT_FORMAT_KEY, InputFormat, export_backbone
from selfsup.errors import ConfigurationError


class BackboneExport(pl.Callback):
    """Record the input format in every checkpoint; write ``<default_root_dir>/<filename>`` when fitting ends.

    The export holds the backbone's weights, the name and arguments that rebuild it,
    the method, the step and epoch, and the input format (image size, mean, std) of
    the datamodule, so that evaluation prepares images as pretraining did (a datamodule
    that states none leaves evaluation to its default, with a warning). Rank 0 writes
    it, atomically; a run that ends by an error, or took no step, writes none.
    """

    def __init__(self, filename: str = "backbone.pt") -> None:
        self.filename = filename
        self.path: Path | None = None

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        input_format = InputFormat.of(trainer.datamodule)
        if input_format is not None:
            checkpoint[INPUT_FORMAT_KEY] = input_format.as_dict()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == 0:
            raise ConfigurationError(
                "the run took no optimiser step (trainer.max_epochs, max_steps or limit_train_batches is 0), so no "
                f"{self.filename} was written: it would look like a trained backbone."
            )
        self.path = Path(trainer.default_root_dir) / self.filename
        if not trainer.is_global_zero:
            return
        input_format = InputFormat.of(trainer.datamodule)
        export_backbone(
            self.path,
            pl_module.backbone,
            pl_module.hparams.backbone,
            pl_module.hparams.backbone_kwargs,
            method=type(pl_module).__name__,
            global_step=trainer.global_step,
            epoch=trainer.current_epoch,
            **(input_format.as_dict() if input_format is not None else {}),
        )
