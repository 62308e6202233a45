"""The last lines of a pretraining run: where its checkpoints, backbone and logs went."""

import sys

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from selfsup.runtime.backbone_export import BackboneExport


class RunSummary(pl.Callback):
    """Print, on rank 0 when fitting ends, the epoch and step reached, the files written and the monitors."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            print(summary(trainer), file=sys.stderr, flush=True)


def summary(trainer: pl.Trainer) -> str:
    lines = [f"selfsup fit: finished at epoch {trainer.current_epoch}, step {trainer.global_step}"]
    checkpoints = {
        path
        for callback in trainer.callbacks
        if isinstance(callback, ModelCheckpoint)
        for path in (callback.best_model_path, callback.last_model_path)
        if path
    }
    lines += [f"  checkpoint: {path}" for path in sorted(checkpoints)]
    lines += [
        f"  backbone:   {callback.path}"
        for callback in trainer.callbacks
        if isinstance(callback, BackboneExport) and callback.path is not None
    ]
    for logger in trainer.loggers:
        directory = getattr(logger, "log_dir", None) or logger.save_dir
        if directory:
            lines.append(f"  logs:       {directory}")
    monitors = {key: value for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
    if monitors:
        lines.append("  " + ", ".join(f"{key} = {float(value):.4f}" for key, value in sorted(monitors.items())))
    return "\n".join(lines)
