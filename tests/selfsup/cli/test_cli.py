"""The ``selfsup`` command end to end: configs, training, resuming, W&B, bad input."""

from pathlib import Path

import pytest
import torch

from selfsup.checkpoints import load_backbone
from selfsup.cli import main
from selfsup.data import DigitsDataModule
from tests.helpers import FAST, REPO

CONFIGS = sorted((REPO / "configs" / "pretrain").glob("*.yaml"))
DIGITS = str(REPO / "configs" / "pretrain" / "simclr_digits.yaml")


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_pretraining_config_parses(config, capsys):
    """In this process (one start-up for all configs): ``--print_config`` resolves every class and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    output = capsys.readouterr()
    assert exit_info.value.code in (0, None), output.err
    assert "class_path: selfsup.methods." in output.out


@pytest.mark.slow
def test_digits_trains_exports_and_resumes_where_it_stopped(run_cli, tmp_path):
    first = run_cli("fit", "--config", DIGITS, *FAST, "--trainer.max_epochs", "2", "--trainer.default_root_dir", "run")
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "run"
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (1, 4)
    _, metadata = load_backbone(run / "checkpoints" / "last.ckpt")
    assert metadata["image_size"] == 16 and tuple(metadata["mean"]) == DigitsDataModule.mean
    assert len(list((run / "checkpoints").glob("best-epoch*-knn*.ckpt"))) == 1
    assert (run / "backbone.pt").is_file()
    summary = first.stderr[first.stderr.index("selfsup fit: finished at epoch 2, step 4") :]
    assert "backbone:   run/backbone.pt" in summary and "checkpoints/last.ckpt" in summary and "val/knn_acc" in summary
    noise = ("💡", "litlogger", "tensorboardX", "LeafSpec", "srun")
    assert not [word for word in noise if word in first.stdout + first.stderr]

    resumed = run_cli(
        "fit",
        "--config",
        DIGITS,
        *FAST,
        "--trainer.max_epochs",
        "3",
        "--trainer.default_root_dir",
        "run",
        "--ckpt_path",
        str(run / "checkpoints" / "last.ckpt"),
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 6)


@pytest.mark.slow
def test_wandb_offline_run_lands_in_the_run_directory(run_cli, tmp_path):
    def fit_with_wandb(*args: str):
        wandb_config = str(REPO / "configs" / "logging" / "wandb.yaml")
        result = run_cli(
            "fit", "--config", DIGITS, "--config", wandb_config, *FAST, "--trainer.default_root_dir", "run", *args
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return sorted((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))

    # Checkpoints as artifacts: WandbLogger wants offline=False for that; WANDB_MODE keeps it offline.
    artifacts = ["--trainer.logger.init_args.offline", "false", "--trainer.logger.init_args.log_model", "true"]
    runs = fit_with_wandb("--trainer.max_epochs", "1", "--trainer.log_every_n_steps", "1", *artifacts)
    assert len(runs) == 1
    records = runs[0].read_bytes()
    run_id = (tmp_path / "run" / "wandb_run_id").read_text().strip()
    expected = [b"train/nt_xent", b"train/lr", b"val/knn_acc", b"val/linear_acc", b"temperature"]
    expected += [b"train/augmented_views", f"model-{run_id}".encode()]
    for key in expected:
        assert key in records, key
    assert list((runs[0].parent / "files" / "media" / "images" / "train").glob("augmented_views_*.png"))
    assert not (tmp_path / "wandb").exists()

    # Resuming in the same run directory continues the same W&B run.
    runs = fit_with_wandb("--trainer.max_epochs", "2", "--ckpt_path", "run/checkpoints/last.ckpt")
    assert len(runs) == 2
    assert all(path.name == f"run-{run_id}.wandb" for path in runs)


def _assert_clean_error(result, *fragments):
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr[-3000:]


def test_unknown_config_key_is_refused(run_cli):
    result = run_cli("fit", "--config", DIGITS, "--model.init_args.temprature", "0.5")
    _assert_clean_error(result, "temprature")


def test_missing_dataset_path_is_one_clear_message(run_cli, tmp_path):
    config = str(REPO / "configs" / "pretrain" / "simclr_cifar10.yaml")
    result = run_cli(
        "fit",
        "--config",
        config,
        "--data.init_args.data_dir",
        str(tmp_path / "nowhere"),
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "1",
        "--trainer.strategy",
        "auto",
    )
    _assert_clean_error(result, f"expected the directory {tmp_path / 'nowhere'}", "--data.data_dir")


def test_non_positive_temperature_is_refused(run_cli):
    result = run_cli("fit", "--config", DIGITS, "--model.init_args.temperature", "0")
    _assert_clean_error(result, "temperature must be a finite number > 0")


@pytest.mark.slow
def test_a_new_run_into_a_directory_holding_a_run_is_refused_and_leaves_it_as_it_was(run_cli, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"earlier run")
    result = run_cli(
        "fit",
        "--config",
        DIGITS,
        *FAST[:-4],
        "--data.init_args.batch_size",
        "1",
        "--trainer.max_epochs",
        "1",
        "--trainer.default_root_dir",
        "run",
    )
    _assert_clean_error(
        result, "already holds a run (checkpoints/last.ckpt)", "--ckpt_path", "--existing_run overwrite"
    )
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == b"earlier run"
    assert not Path(run / "backbone.pt").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "overrides"),
    [("simclr", []), ("moco_v2", []), ("dim", ["--model.init_args.global_weight", "0.5"])],
    ids=["simclr", "moco_v2", "dim"],
)
def test_two_process_ddp_pretraining_runs_through_the_cli(run_cli, tmp_path, method, overrides):
    config = str(REPO / "configs" / "pretrain" / f"{method}_digits.yaml")
    result = run_cli(
        "fit",
        "--config",
        config,
        *FAST,
        *overrides,
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.max_epochs",
        "1",
        "--trainer.default_root_dir",
        "run",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2
    assert (tmp_path / "run" / "backbone.pt").is_file()
