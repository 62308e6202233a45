"""One run per directory: no new run over an old one, no two runs at once, no lock left by a crash."""

import signal
import subprocess
import sys
import time

import pytest

from selfsup.cli import main
from selfsup.runtime.run_directory import LOCK_FILE, RunDirectoryClaim, claim_run_directory
from tests.helpers import FAST, SIMCLR_DIGITS


def fit(run_dir, *extra: str) -> None:
    main(
        [
            "fit",
            "--config",
            SIMCLR_DIGITS,
            *FAST,
            "--trainer.max_epochs",
            "1",
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(run_dir),
            *extra,
        ]
    )


def test_an_empty_or_new_directory_is_claimed(tmp_path):
    claim = claim_run_directory(tmp_path / "new", resuming=False, existing_run="refuse")
    assert (tmp_path / "new" / LOCK_FILE).read_text().startswith("pid ")
    claim.release()


def test_a_directory_holding_a_run_is_refused_unless_resumed_or_overwritten(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"earlier")
    (tmp_path / "wandb_run_id").write_text("abc\n")
    with pytest.raises(Exception, match="already holds a run"):
        claim_run_directory(tmp_path, resuming=False, existing_run="refuse")
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == b"earlier"
    claim_run_directory(tmp_path, resuming=True, existing_run="refuse").release()
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    claim_run_directory(tmp_path, resuming=False, existing_run="overwrite").release()
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "wandb_run_id").exists()


def test_a_second_run_into_a_directory_in_use_is_refused_naming_the_holder(tmp_path, capsys):
    holder = RunDirectoryClaim(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        fit(tmp_path)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "is in use by a running selfsup fit (pid " in error
    holder.release()


def test_a_crashed_run_leaves_no_lock_behind(tmp_path):
    script = (
        "import sys, time; from pathlib import Path; from selfsup.runtime.run_directory import RunDirectoryClaim; "
        "claim = RunDirectoryClaim(Path(sys.argv[1])); print('claimed', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "claimed"
    with pytest.raises(Exception, match="in use"):
        RunDirectoryClaim(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    time.sleep(0.1)
    RunDirectoryClaim(tmp_path).release()


@pytest.mark.slow
def test_overwrite_replaces_the_old_run_and_gets_a_new_wandb_id(tmp_path):
    fit(tmp_path)
    first = (tmp_path / "checkpoints" / "last.ckpt").read_bytes()
    (tmp_path / "wandb_run_id").write_text("oldid\n")
    with pytest.raises(SystemExit):
        fit(tmp_path)
    assert (tmp_path / "checkpoints" / "last.ckpt").read_bytes() == first
    fit(tmp_path, "--existing_run", "overwrite")
    assert (tmp_path / "backbone.pt").is_file() and not (tmp_path / "wandb_run_id").exists()
