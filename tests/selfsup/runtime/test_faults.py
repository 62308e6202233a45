"""Faults a long run meets: a killed process, a killed checkpoint writer, a diverging loss."""

import signal
import subprocess
import sys
import time

import pytest
import pytorch_lightning as pl
import torch

from selfsup.checkpoints import read_checkpoint
from selfsup.data import DigitsDataModule
from selfsup.errors import ConfigurationError, NonFiniteLossError
from selfsup.runtime.checkpoint_io import SafeCheckpointIO
from tests.helpers import FAST, REPO, DivergingSimCLR, quiet_trainer

MOCO = str(REPO / "configs" / "pretrain" / "moco_v2_digits.yaml")
SIMCLR = str(REPO / "configs" / "pretrain" / "simclr_digits.yaml")
DIVERGING = ["--model.class_path", "tests.helpers.DivergingSimCLR", "--model.init_args.nan_at_step", "3"]


def _selfsup(tmp_path, *args):
    command = [sys.executable, "-m", "selfsup", "fit", *args]
    return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _signal_once_saved(process, checkpoint, signum) -> None:
    """Send ``signum`` to the running ``process`` as soon as it has written ``checkpoint``."""
    while not checkpoint.exists() and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be signalled"
    process.send_signal(signum)


def _states(path):
    checkpoint = torch.load(path, weights_only=True)
    return checkpoint["state_dict"], checkpoint["optimizer_states"][0]["state"], checkpoint["global_step"]


@pytest.mark.slow
def test_sigkilled_run_resumed_from_last_checkpoint_matches_the_uninterrupted_run(run_cli, tmp_path):
    args = [MOCO, *FAST, "--trainer.deterministic", "true", "--trainer.max_epochs", "4"]
    reference = run_cli("fit", "--config", *args, "--trainer.default_root_dir", "uninterrupted")
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed = _selfsup(tmp_path, "--config", *args, "--trainer.default_root_dir", "killed")
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    _signal_once_saved(killed, last, signal.SIGKILL)
    killed.wait()
    assert torch.load(last, weights_only=True)["epoch"] < 3

    resumed = run_cli("fit", "--config", *args, "--trainer.default_root_dir", "killed", "--ckpt_path", str(last))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    weights, optimizer, step = _states(last)
    expected_weights, expected_optimizer, expected_step = _states(tmp_path / "uninterrupted/checkpoints/last.ckpt")
    assert step == expected_step
    assert all(torch.equal(weights[name], expected_weights[name]) for name in expected_weights)
    assert "queue.keys" in weights and "queue.pointer" in weights
    for index, state in expected_optimizer.items():
        assert torch.equal(optimizer[index]["momentum_buffer"], state["momentum_buffer"])


_WRITER = """
import sys, torch
from selfsup.runtime.checkpoint_io import SafeCheckpointIO
io = SafeCheckpointIO()
version = 0
while True:
    version += 1
    io.save_checkpoint({"version": version, "weights": torch.full((16, 1024, 1024), float(version))}, sys.argv[1])
"""


def test_killing_the_checkpoint_writer_mid_write_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    for _ in range(3):
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
        try:
            deadline = time.monotonic() + 60
            while not list(tmp_path.glob(".last.ckpt.*.tmp")) and time.monotonic() < deadline:
                time.sleep(0.001)
            assert list(tmp_path.glob(".last.ckpt.*.tmp")), "no write was caught in progress"
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        if path.exists():
            checkpoint = read_checkpoint(path)
            assert torch.equal(checkpoint["weights"], torch.full((16, 1024, 1024), float(checkpoint["version"])))
        for partial in tmp_path.glob(".last.ckpt.*.tmp"):
            partial.unlink()


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint", "not a readable checkpoint"),
        ("truncated", "not a readable checkpoint"),
        ("pickled code", "refusing to load"),
    ],
)
def test_resume_refuses_bad_checkpoint_files_with_one_message(tmp_path, capsys, content, message):
    path = tmp_path / "last.ckpt"
    if content == "truncated":
        torch.save({"state_dict": {"weight": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:700])
    elif content == "pickled code":
        torch.save({"state_dict": {}, "callbacks": _Payload()}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=message):
        SafeCheckpointIO().load_checkpoint(path)
    assert "pickled code ran" not in capsys.readouterr().out


@pytest.mark.slow
def test_resuming_with_another_architecture_or_a_malicious_file_is_one_message(run_cli, tmp_path):
    first = run_cli("fit", "--config", SIMCLR, *FAST, "--trainer.max_epochs", "1", "--trainer.default_root_dir", "run")
    assert first.returncode == 0, first.stderr[-3000:]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    wider = run_cli(
        "fit", "--config", SIMCLR, *FAST[:-2], "--model.init_args.backbone_kwargs", "{width: 16}",
        "--trainer.max_epochs", "2", "--trainer.default_root_dir", "run", "--ckpt_path", str(last),
    )  # fmt: skip
    assert wider.returncode == 2 and "Traceback" not in wider.stderr
    assert "does not belong to this SimCLR" in wider.stderr and "other shapes [backbone." in wider.stderr

    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "callbacks": _Touch(str(marker))}, evil)
    refused = run_cli("fit", "--config", SIMCLR, *FAST, "--trainer.default_root_dir", "run", "--ckpt_path", str(evil))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "refusing to load" in refused.stderr and not marker.exists()
    assert last.read_bytes() == before


class _Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.slow
def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(run_cli, tmp_path):
    result = run_cli(
        "fit", "--config", SIMCLR, *FAST, *DIVERGING, "--trainer.max_epochs", "3", "--trainer.default_root_dir", "run",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "DivergingSimCLR: the loss is nan at step 3 (epoch 1)" in result.stderr
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert str(last) in result.stderr
    weights, _, step = _states(last)
    assert step == 2 and all(torch.isfinite(value).all() for value in weights.values())
    assert not (tmp_path / "run" / "backbone.pt").exists()


class _RecordWeights(pl.Callback):
    def __init__(self):
        self.before, self.after = {}, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before[trainer.global_step] = [p.detach().clone() for p in pl_module.parameters()]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.after[trainer.global_step - 1] = [p.detach().clone() for p in pl_module.parameters()]


def _diverging(**overrides):
    pl.seed_everything(0, verbose=False)
    settings = dict(backbone="small_conv", backbone_kwargs={"width": 8}, projection_dim=16, warmup_epochs=0)
    return DivergingSimCLR(**{**settings, **overrides})


def test_skip_mode_leaves_the_weights_of_a_non_finite_batch_untouched(tmp_path):
    model, recorder = _diverging(non_finite_loss="skip", nan_at_step=2), _RecordWeights()
    trainer = quiet_trainer(tmp_path, max_steps=5, callbacks=[recorder])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    assert trainer.global_step == 5
    assert all(torch.equal(a, b) for a, b in zip(recorder.before[2], recorder.after[2]))
    assert not all(torch.equal(a, b) for a, b in zip(recorder.before[3], recorder.after[3]))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_stop_mode_raises_before_the_update(tmp_path):
    model, recorder = _diverging(nan_at_step=2), _RecordWeights()
    trainer = quiet_trainer(tmp_path, max_steps=5, callbacks=[recorder])
    with pytest.raises(NonFiniteLossError, match="DivergingSimCLR: the loss is nan at step 2"):
        trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    assert all(torch.equal(a, b) for a, b in zip(recorder.before[2], model.parameters()))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_a_nan_on_one_rank_is_handled_by_both_ranks_without_a_hang(run_cli, tmp_path, mode):
    result = run_cli(
        "fit", "--config", SIMCLR, *FAST, *DIVERGING, "--model.init_args.nan_on_rank", "1",
        "--model.init_args.non_finite_loss", mode, "--trainer.devices", "2", "--trainer.strategy", "ddp",
        "--trainer.max_epochs", "2", "--trainer.default_root_dir", "run", timeout=120,
    )  # fmt: skip
    if mode == "stop":
        assert result.returncode == 3, result.stderr[-3000:]
        assert result.stderr.count("at step 3 (epoch 1); training stopped") == 1
    else:
        assert result.returncode == 0, result.stderr[-3000:]
        assert _states(tmp_path / "run" / "checkpoints" / "last.ckpt")[2] == 4


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_saves_a_checkpoint_exits_non_zero_and_the_run_resumes_from_it(run_cli, tmp_path, signum):
    """scancel, a container stop or Ctrl-C: the state is saved, exit 4, no backbone.pt; resuming finishes the run."""
    args = [SIMCLR, *FAST, "--trainer.max_epochs", "1000"]
    stopped = _selfsup(tmp_path, "--config", *args, "--trainer.default_root_dir", "run")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    _signal_once_saved(stopped, last, signum)
    _, error = stopped.communicate(timeout=120)
    assert stopped.returncode == 4, error[-3000:]
    saved = tmp_path / "run" / "hpc_ckpt_1.ckpt"
    assert f"stopped by {signum.name}" in error and "Traceback" not in error
    assert f"resume with --ckpt_path {saved.relative_to(tmp_path)}" in error
    assert not (tmp_path / "run" / "backbone.pt").exists()
    step = torch.load(saved, weights_only=True)["global_step"]
    assert step >= 2

    epochs = str(torch.load(saved, weights_only=True)["epoch"] + 2)
    resumed = run_cli(
        "fit",
        "--config",
        SIMCLR,
        *FAST,
        "--trainer.max_epochs",
        epochs,
        "--trainer.default_root_dir",
        "run",
        "--ckpt_path",
        str(saved),
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] > step
    assert (tmp_path / "run" / "backbone.pt").is_file()


def _file_size_limited(limit: int):
    """A child-process set-up under which writing a file beyond ``limit`` bytes fails, as on a full disk."""

    def limit_file_size() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return limit_file_size


@pytest.mark.slow
def test_a_full_disk_while_checkpointing_exits_5_and_keeps_what_was_written(run_cli, tmp_path):
    args = ["--config", SIMCLR, *FAST, "--trainer.default_root_dir", "run"]
    assert run_cli("fit", *args, "--trainer.max_epochs", "1").returncode == 0
    run = tmp_path / "run"
    kept = {path: path.read_bytes() for path in (run / "checkpoints" / "last.ckpt", run / "backbone.pt")}
    resume = [*args, "--trainer.max_epochs", "3", "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]
    full = subprocess.run(
        [sys.executable, "-m", "selfsup", "fit", *resume],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_file_size_limited(len(kept[run / "checkpoints" / "last.ckpt"]) // 2),
    )
    assert full.returncode == 5, full.stderr[-3000:]
    assert "no space left to write" in full.stderr and "Traceback" not in full.stderr
    assert all(path.read_bytes() == content for path, content in kept.items())
    assert not list(run.rglob("*.tmp"))
