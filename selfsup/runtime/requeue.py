"""Preemption on SLURM: checkpoint and requeue when the job is signalled, without deadlock.

SLURM sends the signal (``#SBATCH --signal=USR1@120``) to every task at its own moment.
Lightning's built-in handler saves the checkpoint from inside the signal handler, and
saving is collective: a rank that is blocked in a gradient all-reduce never joins, and
the job hangs until it is killed (seen here, one run in two, with 2 CPU processes).

This callback replaces that handler for the duration of training. The handler only sets
a flag; after every training batch the ranks agree on the flag (one all-reduce of a
scalar), and if any rank was signalled, all of them save ``hpc_ckpt_N.ckpt`` in the run
directory together, rank 0 closes the W&B run (the restart resumes it under the same id)
and asks SLURM to requeue the job, and every process exits. The
requeued job resumes from the newest checkpoint of the run directory (see ``slurm/``).
Outside SLURM the callback does nothing.
"""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.environments import SLURMEnvironment


class RequeueOnSignal(pl.Callback):
    def __init__(self, signal_name: str = "SIGUSR1") -> None:
        """``signal_name``: the signal ``#SBATCH --signal`` sends (SIGUSR1 in ``slurm/`` templates)."""
        self.signal_name = signal_name
        self._signalled = False
        self._previous_handler = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if SLURMEnvironment.detect():
            self._previous_handler = signal.signal(getattr(signal, self.signal_name), self._flag)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._previous_handler is not None:
            signal.signal(getattr(signal, self.signal_name), self._previous_handler)
            self._previous_handler = None

    def _flag(self, signum, frame) -> None:
        self._signalled = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx):
        if self._previous_handler is None:
            return
        signalled = torch.tensor(float(self._signalled), device=pl_module.device)
        if trainer.strategy.reduce(signalled, reduce_op="max").item() == 0:
            return
        path = next_hpc_checkpoint(Path(trainer.default_root_dir))
        trainer.save_checkpoint(path)
        if trainer.is_global_zero:
            _finish_wandb_run()
            job_id = os.environ["SLURM_JOB_ID"]
            if not re.fullmatch(r"[0-9_]+", job_id):
                raise RuntimeError(f"unexpected SLURM_JOB_ID {job_id!r}")
            result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
            print(
                f"saved {path} at step {trainer.global_step}; "
                + (f"requeued job {job_id}" if result.returncode == 0 else f"requeue failed: {result.stderr}"),
                file=sys.stderr,
                flush=True,
            )
        trainer.strategy.barrier("requeue")
        sys.exit(0)


def _finish_wandb_run() -> None:
    """Close the W&B run before the requeue kills this process, so the restart can resume it."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.run.finish(exit_code=0)


def next_hpc_checkpoint(run_dir: Path) -> Path:
    """``hpc_ckpt_<N+1>.ckpt`` after the highest N in ``run_dir`` (Lightning's naming)."""
    numbers = [
        int(match.group(1)) for p in run_dir.glob("hpc_ckpt_*.ckpt") if (match := re.search(r"_(\d+)\.", p.name))
    ]
    return run_dir / f"hpc_ckpt_{max(numbers, default=0) + 1}.ckpt"
