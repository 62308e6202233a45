"""Test settings: W&B offline with every directory it writes in a temporary folder."""

import os
import sys
import tempfile

import pytest
import torch

from tests.helpers import REPO

_WANDB_ROOT = tempfile.mkdtemp(prefix="selfsup-wandb-")
for variable in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
    os.environ[variable] = _WANDB_ROOT
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"


@pytest.fixture
def run_cli(tmp_path):
    """Run ``python -m selfsup ARGS`` in a subprocess; return the completed process.

    ``tests`` is importable in it, so a config may name a test-only class.
    """
    import subprocess

    def run(*args: str, timeout: float = 300):
        return subprocess.run(
            [sys.executable, "-m", "selfsup", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )

    return run


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny nets on a busy 2-core machine spend two threads mostly waiting on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
