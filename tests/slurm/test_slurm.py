"""SLURM: the launcher's scripts, and a real preemption on a local Slurm."""

import time

import pytest
import torch

from selfsup.cli import main
from selfsup.runtime.requeue import next_hpc_checkpoint
from slurm.launch import Resources, render
from tests.helpers import REPO
from tests.slurm.local_cluster import LocalSlurm, can_install, install

DIGITS = str(REPO / "configs" / "pretrain" / "simclr_digits.yaml")
WANDB = str(REPO / "configs" / "logging" / "wandb.yaml")


def test_every_resource_lands_in_the_script(tmp_path):
    resources = Resources(
        nodes=4,
        gpus_per_node=8,
        cpus_per_task=10,
        mem="480G",
        time="2-00:00:00",
        partition="gpu",
        account="vision",
        job_name="simclr-in1k",
        signal_seconds=300,
        sbatch_lines=["constraint=a100", "--exclusive", "#SBATCH --qos=high"],
    )
    script = render("pretrain", [DIGITS], str(tmp_path / "run"), resources, ["--trainer.max_epochs", "100"])
    for line in (
        "#SBATCH --job-name=simclr-in1k",
        "#SBATCH --nodes=4",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --cpus-per-task=10",
        "#SBATCH --mem=480G",
        "#SBATCH --time=2-00:00:00",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=vision",
        "#SBATCH --signal=USR1@300",
        "#SBATCH --requeue",
        "#SBATCH --constraint=a100",
        "#SBATCH --exclusive",
        "#SBATCH --qos=high",
        f"#SBATCH --output={tmp_path / 'run'}/slurm-%j.out",
    ):
        assert line in script.splitlines(), line
    assert f"srun {__import__('sys').executable} -m selfsup fit --config {DIGITS}" in script
    assert "--trainer.num_nodes 4 --trainer.devices 8" in script
    assert "--trainer.max_epochs 100" in script
    assert 'ls -t "$RUN_DIR"/hpc_ckpt_*.ckpt "$RUN_DIR"/checkpoints/last.ckpt' in script


def test_cpu_jobs_get_one_task_unless_told_and_no_gpu_line(tmp_path):
    script = render("evaluate", [DIGITS], str(tmp_path), Resources(tasks_per_node=2))
    assert "#SBATCH --ntasks-per-node=2" in script and "--gpus-per-node" not in script
    assert "--partition" not in script and "--account" not in script
    assert "-m selfsup evaluate" in script and "--hardware.devices 2" in script
    assert "--ntasks-per-node=1" in render("pretrain", [DIGITS], str(tmp_path), Resources())


def test_dry_run_prints_without_submitting(tmp_path, capsys):
    main(
        [
            "launch",
            "pretrain",
            "--config",
            DIGITS,
            "--run-dir",
            str(tmp_path / "run"),
            "--gpus-per-node",
            "2",
            "--dry-run",
        ]
    )
    assert "#SBATCH --gpus-per-node=2" in capsys.readouterr().out
    assert not (tmp_path / "run").exists()


def test_a_missing_config_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["launch", "pretrain", "--config", str(tmp_path / "nope.yaml"), "--run-dir", str(tmp_path), "--dry-run"])
    assert exit_info.value.code == 2
    assert "config not found" in capsys.readouterr().err


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def readable(checkpoint):
    """The checkpoint's contents, or None while it is missing or half-written."""
    try:
        return torch.load(checkpoint, weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError):
        return None


@pytest.mark.slow
def test_preempted_job_requeues_resumes_and_keeps_one_wandb_run(tmp_path):
    reason = can_install() or install()
    if reason:
        pytest.skip(f"no local Slurm: {reason}")
    cluster = LocalSlurm(tmp_path / "slurm").start()
    try:
        run_dir = tmp_path / "run"
        epochs = 12
        resources = Resources(tasks_per_node=2, cpus_per_task=1, mem="1G", time="00:15:00", job_name="selfsup-test")
        extra = [
            "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.max_epochs", str(epochs),
            "--trainer.enable_progress_bar", "false", "--data.init_args.batch_size", "32",
            "--model.init_args.backbone_kwargs", "{width: 8}",
        ]  # fmt: skip
        run_dir.mkdir()
        script = run_dir / "pretrain.sbatch"
        script.write_text(render("pretrain", [DIGITS, WANDB], str(run_dir), resources, extra))
        job_id = cluster.run("sbatch", "--parsable", str(script)).stdout.strip()
        log = run_dir / f"slurm-{job_id}.out"

        last = run_dir / "checkpoints" / "last.ckpt"
        wait_for(lambda: readable(last) is not None, 180, "the first epoch's checkpoint")
        first = readable(last) or readable(last)  # a second try if it was being rewritten
        steps_per_epoch = first["global_step"] // (first["epoch"] + 1)
        cluster.run("scancel", "--signal=USR1", job_id)
        finished = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL")
        wait_for(lambda: cluster.job(job_id).get("JobState") in finished, 300, "the requeued job to finish")

        output = log.read_text()
        assert cluster.job(job_id)["JobState"] == "COMPLETED", output[-3000:]
        assert cluster.job(job_id)["Restarts"] == "1"
        assert "(restart 0) resuming from: nothing" in output
        # The restart takes the newest checkpoint: the one saved on the signal, or an
        # end-of-epoch one written while the job ran on until the requeue stopped it.
        restart = output[output.index("(restart 1) resuming from: ") :].splitlines()[0]
        resumed_from = restart.removeprefix("(restart 1) resuming from: ")
        assert resumed_from in (str(run_dir / "hpc_ckpt_1.ckpt"), str(last)), output[-3000:]
        assert f"Restored all states from the checkpoint at {resumed_from}" in output
        interrupted = torch.load(run_dir / "hpc_ckpt_1.ckpt", weights_only=True)["global_step"]
        final = torch.load(last, weights_only=True)
        assert steps_per_epoch <= interrupted < epochs * steps_per_epoch
        # Resumed where it stopped: every step taken exactly once, no epoch repeated or skipped.
        assert (final["epoch"], final["global_step"]) == (epochs - 1, epochs * steps_per_epoch)
        assert (run_dir / "backbone.pt").is_file()

        run_id = (run_dir / "wandb_run_id").read_text().strip()
        wandb_runs = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(wandb_runs) == 2, wandb_runs
        assert all(path.name == f"run-{run_id}.wandb" for path in wandb_runs)
    finally:
        cluster.stop()


def test_hpc_checkpoints_are_numbered_after_the_highest(tmp_path):
    assert next_hpc_checkpoint(tmp_path).name == "hpc_ckpt_1.ckpt"
    for number in (1, 2, 7):
        (tmp_path / f"hpc_ckpt_{number}.ckpt").touch()
    assert next_hpc_checkpoint(tmp_path).name == "hpc_ckpt_8.ckpt"


HOSTILE = [
    ("job name with a newline", ["--job-name", "x\n#SBATCH --partition=other"], "--job-name must be"),
    ("job name with a command", ["--job-name", "x; rm -rf ~"], "--job-name must be"),
    ("memory with a directive", ["--mem", "64G\n#SBATCH --qos=high"], "--mem must be"),
    ("memory not a size", ["--mem", "lots"], "--mem must be"),
    ("time with a command", ["--time", "24:00:00 $(reboot)"], "--time must be"),
    ("partition with a space", ["--partition", "gpu --qos=high"], "--partition must be"),
    ("account with a newline", ["--account", "a\nsrun evil"], "--account must be"),
    ("zero nodes", ["--nodes", "0"], "--nodes must be an integer"),
    ("negative GPUs", ["--gpus-per-node", "-1"], "--gpus-per-node must be"),
    ("signal beyond SLURM's range", ["--signal-seconds", "70000"], "--signal-seconds must be"),
    ("directive not allowed", ["--sbatch", "output=/tmp/elsewhere"], "is not one --sbatch may add"),
    ("directive with a second line", ["--sbatch", "constraint=a100\nsrun evil"], "control character"),
    ("directive value with a space", ["--sbatch", "comment=two words"], "one word"),
    ("run directory moved by an argument", ["--trainer.default_root_dir", "/elsewhere"], "set by the launcher"),
    ("checkpoint forced by an argument", ["--ckpt_path=/tmp/other.ckpt"], "set by the launcher"),
    ("devices overridden by an argument", ["--trainer.devices", "64"], "set by the launcher"),
    ("argument with a newline", ["--model.init_args.lr", "0.1\nrm -rf ~"], "control character"),
]


@pytest.mark.parametrize(("arguments", "fragment"), [row[1:] for row in HOSTILE], ids=[row[0] for row in HOSTILE])
def test_hostile_values_are_refused_before_a_script_is_written(tmp_path, capsys, arguments, fragment):
    with pytest.raises(SystemExit) as exit_info:
        main(["launch", "pretrain", "--config", DIGITS, "--run-dir", str(tmp_path / "run"), "--dry-run", *arguments])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert fragment in captured.err and "#SBATCH" not in captured.out
    assert not (tmp_path / "run").exists()


def test_a_run_directory_that_sbatch_would_misread_is_refused(tmp_path, capsys):
    for name in ("with space", "percent%j", "quote'd"):
        with pytest.raises(SystemExit):
            main(["launch", "pretrain", "--config", DIGITS, "--run-dir", str(tmp_path / name), "--dry-run"])
        assert "--run-dir" in capsys.readouterr().err


def test_a_config_path_with_spaces_is_quoted_into_one_argument(tmp_path):
    config = tmp_path / "my configs" / "run.yaml"
    config.parent.mkdir()
    config.write_text("seed_everything: 0\n")
    script = render("pretrain", [str(config)], str(tmp_path / "run"), Resources(), ["--model.init_args.lr", "0.1 0.2"])
    assert f"--config '{config}'" in script and "--model.init_args.lr '0.1 0.2'" in script
