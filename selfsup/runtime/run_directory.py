"""One run per directory: a pretraining run claims its ``trainer.default_root_dir``.

* A directory that already holds a run (``checkpoints/*.ckpt``, ``hpc_ckpt_*.ckpt`` or
  ``backbone.pt``) is refused unless the command says what it means: ``--ckpt_path`` to
  resume it, or ``--existing_run overwrite`` to replace it (its checkpoints, backbone
  and W&B run id are removed first; logs are kept).
* A directory another ``selfsup fit`` is training in is refused: the running process
  holds an exclusive ``flock`` on ``<run>/.selfsup.lock``, which the operating system
  releases when that process ends, however it ends, so a crashed run never leaves the
  directory locked.

Only the first process of a job claims the directory (global rank 0 on node 0); the
other ranks of the same run write into it under that claim.
"""

import fcntl
import os
import shutil
import socket
from pathlib import Path
from typing import Literal

from selfsup.errors import ConfigurationError

LOCK_FILE = ".selfsup.lock"
ExistingRun = Literal["refuse", "overwrite"]


def run_files(run_dir: Path) -> list[Path]:
    """The files that make ``run_dir`` hold a run."""
    found = sorted((run_dir / "checkpoints").glob("*.ckpt")) + sorted(run_dir.glob("hpc_ckpt_*.ckpt"))
    return found + [path for path in (run_dir / "backbone.pt",) if path.exists()]


class RunDirectoryClaim:
    """The exclusive lock of one run directory, held as long as this object (and the process) lives."""

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / LOCK_FILE
        self._handle = open(self.path, "a+")  # held open, and locked, for the life of the run
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "another process"
            self._handle.close()
            raise ConfigurationError(
                f"{run_dir} is in use by a running selfsup fit ({holder}); wait for it to end, or give this run "
                "another trainer.default_root_dir."
            ) from None
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        self._handle.flush()

    def release(self) -> None:
        self._handle.close()


def claim_run_directory(run_dir: Path, resuming: bool, existing_run: ExistingRun) -> RunDirectoryClaim:
    """Lock ``run_dir`` for this run, refusing to start a new run over an existing one."""
    claim = RunDirectoryClaim(run_dir)
    existing = run_files(run_dir)
    if existing and not resuming:
        if existing_run != "overwrite":
            claim.release()
            shown = ", ".join(str(path.relative_to(run_dir)) for path in existing[:4])
            raise ConfigurationError(
                f"{run_dir} already holds a run ({shown}); resume it with --ckpt_path "
                f"{run_dir / 'checkpoints' / 'last.ckpt'}, start this one in another trainer.default_root_dir, "
                "or replace it with --existing_run overwrite."
            )
        for path in existing:
            path.unlink()
        (run_dir / "wandb_run_id").unlink(missing_ok=True)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return claim
