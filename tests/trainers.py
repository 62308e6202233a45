"""A CPU trainer that writes and prints nothing, for tests that fit a method directly."""

import pytorch_lightning as pl


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
