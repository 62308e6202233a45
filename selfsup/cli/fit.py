"""``selfsup fit``: pretraining, LightningCLI over every method and datamodule.

    selfsup fit --config configs/pretrain/simclr_digits.yaml
    selfsup fit --config configs/pretrain/simclr_cifar10.yaml --data.init_args.data_dir /data/cifar10
    selfsup fit --config ... --ckpt_path runs/simclr_cifar10/checkpoints/last.ckpt   # resume

Every constructor argument of the method, the datamodule, the trainer, the checkpoint
callbacks and the run-time callbacks (:mod:`selfsup.runtime`) is a YAML key. A run
directory (``trainer.default_root_dir``) collects ``checkpoints/last.ckpt``,
``checkpoints/best-*.ckpt`` (highest online kNN accuracy), ``config.yaml``, the logs
and ``backbone.pt``; the run ends by saying where they went.

The optimiser and its schedule belong to the method (``model.init_args.optimizer``,
``lr``, ``warmup_epochs``, ...): LightningCLI's own ``--optimizer`` and
``--lr_scheduler`` would silently replace them, and are refused.
"""

import os
import uuid
from pathlib import Path
from typing import Literal

import yaml
from jsonargparse import Namespace
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.plugins.io import TorchCheckpointIO
from pytorch_lightning.utilities import rank_zero_only

from selfsup.data import PretrainDataModule
from selfsup.errors import ConfigurationError
from selfsup.methods import PretrainMethod
from selfsup.runtime import (
    BackboneExport,
    LogAugmentedViews,
    RandomStateCheckpoint,
    RequeueOnSignal,
    RunSummary,
    SafeCheckpointIO,
    check_devices,
)
from selfsup.runtime.run_directory import RunDirectoryClaim, claim_run_directory

OPTIMISER_ARGUMENTS = ("optimizer", "lr_scheduler")
#: The run directory claimed by this process, released when ``main`` returns or raises.
_CLAIMS: list[RunDirectoryClaim] = []
FIT_HELP = (
    "Pretrain a backbone. A method's own arguments, described: --model.help selfsup.methods.MoCo "
    "(SimCLR, MoCo, RotationPrediction, Jigsaw, RelativePosition, DeepInfoMax, CPC, DenoisingAutoencoder); "
    "a datamodule's: "
    "--data.help selfsup.data.DigitsDataModule; the resolved config of a run: --config FILE --print_config."
)


class SelfsupParser(LightningArgumentParser):
    """Reports a bad argument as the error and a tip, without the usage screen above it."""

    def print_usage(self, file=None) -> None:
        return None


class SaveConfigOnceChecked(SaveConfigCallback):
    """Lightning's ``config.yaml`` writer, run when fitting starts instead of at setup.

    The method and datamodule check their settings against the trainer in ``setup``
    (batch per device, queue size): a run they refuse writes nothing, and a refused
    resume leaves the run's ``config.yaml`` as it was.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        return None

    def on_fit_start(self, trainer, pl_module) -> None:
        super().setup(trainer, pl_module, "fit")


class SelfsupCLI(LightningCLI):
    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Only ``fit``: Lightning's validate, test and predict do not apply to pretraining methods."""
        return {"fit": LightningCLI.subcommands()["fit"]}

    def add_arguments_to_parser(self, parser) -> None:
        # Two callbacks: this Lightning writes ``save_last`` only at steps where a top-k
        # checkpoint is saved, so the newest state gets a callback of its own.
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(RequeueOnSignal, "requeue")
        parser.add_lightning_class_args(LogAugmentedViews, "views_image")
        parser.add_lightning_class_args(BackboneExport, "backbone_export")
        parser.add_lightning_class_args(RandomStateCheckpoint, "random_state")
        parser.add_lightning_class_args(RunSummary, "run_summary")
        parser.add_argument(
            "--existing_run",
            type=Literal["refuse", "overwrite"],
            default="refuse",
            help="a run directory that holds a run: refuse (resume it with --ckpt_path) or overwrite it",
        )
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
        """Claim the run directory; put W&B's files there unless the config says where; keep one run id.

        The claim (:mod:`selfsup.runtime.run_directory`) refuses a directory that holds
        another run or is in use, before anything is written. The W&B id is stored in
        ``<run directory>/wandb_run_id`` by rank 0: a requeued or resumed job logs to the
        same W&B run (``resume="allow"``) instead of starting a new one.
        """
        config = self.config.get(self.subcommand, self.config)
        check_devices(config.trainer.accelerator, config.trainer.devices)
        if _first_process_of_the_job():
            run_dir = Path(config.trainer.default_root_dir or ".")
            _CLAIMS.append(claim_run_directory(run_dir, config.get("ckpt_path") is not None, config.existing_run))
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


def _first_process_of_the_job() -> bool:
    """Global rank 0 on node 0: the process that claims the run directory for all ranks."""
    return rank_zero_only.rank == 0 and os.environ.get("NODE_RANK", "0") == "0"


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


def main(arguments: list[str]) -> None:
    """Pretrain a backbone with a self-supervised method (LightningCLI: --config, --print_config)."""
    refuse_optimiser_arguments(arguments)
    try:
        _run_cli(arguments)
    finally:
        while _CLAIMS:
            _CLAIMS.pop().release()


def _run_cli(arguments: list[str]) -> None:
    SelfsupCLI(
        PretrainMethod,
        PretrainDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=SaveConfigOnceChecked,
        save_config_kwargs={"overwrite": True},
        parser_class=SelfsupParser,
        auto_configure_optimizers=False,
        parser_kwargs={"prog": "selfsup", "fit": {"description": FIT_HELP}},
        args=["fit", *arguments],
    )


def refuse_optimiser_arguments(arguments: list[str]) -> None:
    """Refuse ``--optimizer`` / ``--lr_scheduler``, on the command line or at the top of a config file."""
    given = [a.removeprefix("--").split("=")[0].split(".")[0] for a in arguments if a.startswith("--")]
    for index, argument in enumerate(arguments):
        if argument == "--config" and index + 1 < len(arguments):
            given += _top_level_keys(arguments[index + 1])
        elif argument.startswith("--config="):
            given += _top_level_keys(argument.removeprefix("--config="))
    refused = sorted(set(given) & set(OPTIMISER_ARGUMENTS))
    if refused:
        raise ConfigurationError(
            f"{' and '.join(refused)} cannot be set here: the optimiser and its schedule are the method's. Set "
            "model.init_args.optimizer (sgd, adamw or lars), lr, lr_scaling, weight_decay, momentum, "
            "warmup_epochs and final_lr_fraction (selfsup fit --config ... --print_config lists them)."
        )


def _top_level_keys(path: str) -> list[str]:
    try:
        content = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []  # the parser reports a missing or malformed file itself
    return list(content) if isinstance(content, dict) else []
