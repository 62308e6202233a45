"""The ``selfsup`` command: LightningCLI over every method and datamodule.

    selfsup fit --config configs/pretrain/simclr_digits.yaml
    selfsup fit --config configs/pretrain/simclr_cifar10.yaml --data.data_dir /data/cifar10
    selfsup fit --config ... --ckpt_path runs/simclr_cifar10/checkpoints/last.ckpt   # resume

Every constructor argument of the model, the datamodule, the trainer and the
checkpoint callback is a YAML key. A run directory (``trainer.default_root_dir``)
collects ``checkpoints/last.ckpt``, ``checkpoints/best-*.ckpt`` (highest online kNN
accuracy), ``config.yaml``, the logs and ``backbone.pt``.

Bad input ends the command with one line on stderr and exit status 2; a loss that
turns non-finite ends it with exit status 3 (see ``model.init_args.non_finite_loss``).
Checkpoints are written atomically and read without unpickling code
(:mod:`selfsup.checkpoint_io`).
"""

import os
import sys
import uuid
from pathlib import Path

from jsonargparse import Namespace
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_only

from selfsup.checkpoint_io import SafeCheckpointIO
from selfsup.data import PretrainDataModule
from selfsup.devices import check_devices
from selfsup.errors import ConfigurationError, NonFiniteLossError
from selfsup.methods import PretrainMethod
from selfsup.requeue import RequeueOnSignal
from selfsup.views_image import LogAugmentedViews


class SelfsupParser(LightningArgumentParser):
    """Reports a bad argument as the error and a tip, without the usage screen above it."""

    def print_usage(self, file=None) -> None:
        return None


class SelfsupCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # Two callbacks: this Lightning writes ``save_last`` only at steps where a top-k
        # checkpoint is saved, so the newest state gets a callback of its own.
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(RequeueOnSignal, "requeue")
        parser.add_lightning_class_args(LogAugmentedViews, "views_image")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/knn_acc",
                "checkpoint.mode": "max",
                "checkpoint.save_top_k": 1,
                "checkpoint.filename": "best-epoch{epoch:03d}-knn{val/knn_acc:.4f}",
                "checkpoint.auto_insert_metric_name": False,
                "last_checkpoint.filename": "last",
                "last_checkpoint.save_top_k": 1,
                "last_checkpoint.every_n_epochs": 1,
                "last_checkpoint.save_on_train_epoch_end": True,
                "last_checkpoint.enable_version_counter": False,
            }
        )
        for name in ("checkpoint", "last_checkpoint"):
            parser.link_arguments("trainer.default_root_dir", f"{name}.dirpath", compute_fn=_checkpoint_dir)
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        """Put W&B's files in the run directory unless the config says where, and keep one run id.

        The id is stored in ``<run directory>/wandb_run_id`` by rank 0: a requeued or resumed
        job logs to the same W&B run (``resume="allow"``) instead of starting a new one.
        """
        config = self.config.get(self.subcommand, self.config)
        check_devices(config.trainer.accelerator, config.trainer.devices)
        loggers = config.trainer.logger if isinstance(config.trainer.logger, list) else [config.trainer.logger]
        for logger in loggers:
            if isinstance(logger, Namespace) and logger.class_path.endswith("WandbLogger"):
                if logger.init_args.get("save_dir") in (None, "."):
                    logger.init_args.save_dir = config.trainer.default_root_dir or "."
                if logger.init_args.get("id") is None:
                    logger.init_args.id = persistent_run_id(Path(logger.init_args.save_dir))
                    logger.init_args.resume = "allow"

    def instantiate_trainer(self, **kwargs):
        trainer = super().instantiate_trainer(**kwargs)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = SafeCheckpointIO()
        return trainer

    def _parse_ckpt_path(self) -> None:
        """Keep the run's own config when resuming: do not read ``--ckpt_path`` here.

        Lightning would load the checkpoint now to copy its hyper-parameters into the model
        config, silently overruling the command line (e.g. a changed ``non_finite_loss``),
        with a raw traceback for a bad file. The file is read once, when the run restores it
        (:class:`SafeCheckpointIO`: one message for a bad file; a checkpoint of another
        architecture is refused by the model).
        """


def persistent_run_id(run_dir: Path) -> str:
    """The W&B run id of ``run_dir``, created (by rank 0 only) on the first call."""
    path = run_dir / "wandb_run_id"
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    if rank_zero_only.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id + "\n")
    return run_id


def _checkpoint_dir(root: str | None) -> str:
    return os.path.join(root or ".", "checkpoints")


def main(args: list[str] | None = None) -> None:
    try:
        SelfsupCLI(
            PretrainMethod,
            PretrainDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            parser_class=SelfsupParser,
            args=args,
        )
    except Exception as error:
        cause = user_error_in(error)
        if cause is None:
            raise
        if rank_zero_only.rank == 0:
            print(f"selfsup: error: {without_worker_traceback(str(cause))}", file=sys.stderr)
        sys.exit(3 if isinstance(cause, NonFiniteLossError) else 2)


USER_ERRORS = (ConfigurationError, NonFiniteLossError, MisconfigurationException)


def user_error_in(error: BaseException | None) -> Exception | None:
    """The error meant for the user behind ``error``, if any: the argument parser wraps them."""
    while error is not None:
        if isinstance(error, USER_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None


def without_worker_traceback(message: str) -> str:
    """The original message of an error a DataLoader worker re-raised with its traceback inside."""
    if "Original Traceback" not in message:
        return message
    last_line = message.rstrip().splitlines()[-1]
    return last_line.split(": ", 1)[-1]


if __name__ == "__main__":
    main()
