"""What several tests share: the repository's path, a quiet CPU trainer, two-process runs,
fast CLI flags and a method whose loss diverges on purpose. No test module imports another."""

import socket
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from selfsup.backbones import build_backbone
from selfsup.checkpoints import export_backbone
from selfsup.data import DigitsDataModule
from selfsup.methods import SimCLR

REPO = Path(__file__).resolve().parents[1]
PRETRAIN_CONFIGS = REPO / "configs" / "pretrain"
SIMCLR_DIGITS = str(PRETRAIN_CONFIGS / "simclr_digits.yaml")

#: ``selfsup fit`` flags that make a digits run take seconds: two batches of 32, a width-8 net.
FAST = [
    "--trainer.limit_train_batches",
    "2",
    "--trainer.check_val_every_n_epoch",
    "1",
    "--trainer.enable_progress_bar",
    "false",
    "--data.init_args.batch_size",
    "32",
    "--model.init_args.backbone_kwargs",
    "{width: 8}",
]


def random_digits_backbone(path, seed: int = 0, width: int = 8) -> str:
    """Export a randomly initialised small conv net (drawn from ``seed``) with the digits' input format."""
    torch.manual_seed(seed)
    digits_format = dict(image_size=16, mean=DigitsDataModule.mean, std=DigitsDataModule.std)
    export_backbone(path, build_backbone("small_conv", width=width), "small_conv", {"width": width}, **digits_format)
    return str(path)


def quiet_trainer(root, **overrides) -> pl.Trainer:
    """``pl.Trainer`` on CPU under ``root`` without logger, checkpoints, progress bar or validation."""
    settings = dict(
        accelerator="cpu",
        limit_val_batches=0,
        default_root_dir=root,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    settings.update(overrides)
    return pl.Trainer(**settings)


class RecordMetric(pl.Callback):
    """The logged value of ``name`` after every training batch, in ``values``."""

    def __init__(self, name: str) -> None:
        self.name, self.values = name, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.values.append(float(trainer.callback_metrics[self.name]))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _entry(rank: int, world_size: int, port: int, function, args) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        function(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def run_on_two_processes(function, *args) -> None:
    """Call ``function(rank, world_size, *args)`` on ranks 0 and 1 joined by gloo; it must be importable."""
    mp.spawn(_entry, args=(2, free_port(), function, args), nprocs=2, join=True)


class DivergingSimCLR(SimCLR):
    """A SimCLR whose loss turns NaN at one chosen step: the fault the non-finite guard is for."""

    def __init__(self, *args, nan_at_step: int = 3, nan_on_rank: int | None = None, **kwargs) -> None:
        """``nan_on_rank``: only that rank's loss turns NaN (all ranks' when None)."""
        super().__init__(*args, **kwargs)
        self.nan_at_step, self.nan_on_rank = nan_at_step, nan_on_rank

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        here = self.nan_on_rank is None or self.nan_on_rank == self.global_rank
        return loss * torch.nan if here and self.global_step == self.nan_at_step else loss
