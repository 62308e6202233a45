"""Where evaluation runs: one Trainer configuration shared by every protocol."""

from dataclasses import dataclass

import pytorch_lightning as pl


@dataclass(frozen=True)
class Hardware:
    """Trainer settings; every protocol that runs the backbone uses them (DDP included).

    ``devices: 2`` with ``strategy: ddp`` runs each protocol on two processes: the
    training split is sharded by a seeded sampler, so the global batches are those of
    one process, and the test split is counted once across ranks.
    """

    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    batch_size: int = 256
    num_workers: int = 0

    def trainer(self, **overrides) -> pl.Trainer:
        settings = dict(
            accelerator=self.accelerator,
            devices=self.devices,
            num_nodes=self.num_nodes,
            strategy=self.strategy,
            precision=self.precision,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            use_distributed_sampler=False,
        )
        settings.update(overrides)
        return pl.Trainer(**settings)
