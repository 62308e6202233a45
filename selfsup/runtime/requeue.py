"""Stopping on a signal without losing the run: checkpoint together, then requeue or exit.

Two signals end a training run early:

* the SLURM warning (``#SBATCH --signal=USR1@120``, :attr:`RequeueOnSignal.signal_name`),
  under SLURM only: every rank saves ``hpc_ckpt_N.ckpt``, rank 0 closes the W&B run
  (the restart resumes it under the same id) and asks SLURM to requeue the job, and
  every process exits with status 0; the requeued job resumes from the newest
  checkpoint of the run directory (see ``slurm/``);
* SIGTERM (``scancel``, a container stop, preemption without the warning) and SIGINT
  (Ctrl-C), always: every rank saves ``hpc_ckpt_N.ckpt`` and the run ends with
  :class:`~selfsup.errors.RunInterrupted`, exit status 4, naming the checkpoint to
  resume from. No ``backbone.pt`` is written: the run did not finish. A second SIGINT
  before the save stops at once (``KeyboardInterrupt``, exit status 130).

Lightning's own handlers save from inside the signal handler, and saving is
collective: a rank blocked in a gradient all-reduce never joins, and the job hangs
(seen here, one run in two, with 2 CPU processes). Here the handler only records the
signal; after every training batch the ranks agree on it (one all-reduce of a scalar,
only when there are several ranks) and act together.
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

from selfsup.errors import RunInterrupted


class RequeueOnSignal(pl.Callback):
    def __init__(self, signal_name: str = "SIGUSR1") -> None:
        """Checkpoint and requeue on the SLURM warning signal; checkpoint and exit on SIGTERM or SIGINT.

        Args:
            signal_name: the signal ``#SBATCH --signal`` sends (SIGUSR1 in the ``slurm/`` templates).
        """
        number = getattr(signal, signal_name, None) if isinstance(signal_name, str) else None
        if not isinstance(number, signal.Signals) or number in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
            raise ValueError(
                f"requeue.signal_name must name a signal other than SIGTERM, SIGINT and SIGKILL (which stop the "
                f"run), such as SIGUSR1 or SIGUSR2; got {signal_name!r}"
            )
        self.signal_name = signal_name
        self._received = 0
        self._previous_handlers: dict[int, object] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        signals = [signal.SIGTERM, signal.SIGINT]
        if SLURMEnvironment.detect():
            signals.append(getattr(signal, self.signal_name))
        for number in signals:
            self._previous_handlers[number] = signal.signal(number, self._record)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)
        self._previous_handlers = {}

    def _record(self, signum, frame) -> None:
        if signum == signal.SIGINT and self._received == signal.SIGINT:
            raise KeyboardInterrupt
        if self._urgency(signum) >= self._urgency(self._received):
            self._received = int(signum)

    def _urgency(self, signum: int) -> int:
        """0 for none, 1 for the SLURM warning (requeue), 2 for SIGINT, 3 for SIGTERM (stop)."""
        return self._by_urgency().index(signum)

    def _by_urgency(self) -> list[int]:
        return [0, getattr(signal, self.signal_name), signal.SIGINT, signal.SIGTERM]

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx):
        if not self._previous_handlers:
            return
        received = self._received
        if trainer.world_size > 1:  # the ranks agree on the most urgent signal any of them received
            urgency = torch.tensor(float(self._urgency(received)), device=pl_module.device)
            received = self._by_urgency()[int(trainer.strategy.reduce(urgency, reduce_op="max").item())]
        if received == 0:
            return
        path = next_hpc_checkpoint(Path(trainer.default_root_dir))
        trainer.save_checkpoint(path)
        trainer.strategy.barrier("checkpoint on signal")
        if received in (signal.SIGTERM, signal.SIGINT):
            raise RunInterrupted(
                f"stopped by {signal.Signals(received).name} at step {trainer.global_step} "
                f"(epoch {trainer.current_epoch}); the state is saved in {path}: "
                f"resume with --ckpt_path {path}. No backbone.pt was written."
            )
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
