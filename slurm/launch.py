"""Render an sbatch script from a config plus resources, and submit it (or print it).

    python -m slurm.launch pretrain --config configs/pretrain/simclr_imagenet.yaml \\
        --run-dir runs/simclr_imagenet --nodes 4 --gpus-per-node 8 --cpus-per-task 10 \\
        --mem 480G --time 2-00:00:00 --partition gpu --account myproject --dry-run
    python -m slurm.launch evaluate --config configs/downstream/cifar10_linear.yaml \\
        --run-dir runs/eval_cifar --gpus-per-node 4

One task per GPU (``--tasks-per-node`` defaults to ``--gpus-per-node``, or 1 without
GPUs); Lightning reads the SLURM environment, saves an HPC checkpoint on the signal sent
``--signal-seconds`` before the time limit, and requeues the job, which resumes from the
newest checkpoint of the run directory. ``--sbatch constraint=a100`` adds any #SBATCH line.
Without ``--dry-run`` the script is written to ``<run-dir>/<kind>.sbatch`` and submitted.
"""

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Resources:
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int | None = None
    cpus_per_task: int = 8
    mem: str = "64G"
    time: str = "24:00:00"
    partition: str | None = None
    account: str | None = None
    job_name: str = "selfsup"
    signal_seconds: int = 120
    sbatch_lines: list[str] = field(default_factory=list)

    def tasks(self) -> int:
        return self.tasks_per_node or max(1, self.gpus_per_node)

    def optional_lines(self) -> str:
        lines = [f"--gpus-per-node={self.gpus_per_node}"] if self.gpus_per_node else []
        lines += [f"--partition={self.partition}"] if self.partition else []
        lines += [f"--account={self.account}"] if self.account else []
        lines += [_sbatch_option(line) for line in self.sbatch_lines]
        return "\n".join(f"#SBATCH {line}" for line in lines)


def _sbatch_option(line: str) -> str:
    """``constraint=a100``, ``--constraint=a100`` or ``#SBATCH --constraint=a100`` -> ``--constraint=a100``."""
    line = line.removeprefix("#SBATCH").strip()
    return line if line.startswith("-") else f"--{line}"


def render(
    kind: str,
    configs: list[str],
    run_dir: str,
    resources: Resources,
    extra_args: list[str] = (),
    python: str = sys.executable,
) -> str:
    """The sbatch script for ``kind`` ("pretrain" or "evaluate")."""
    template = Template((TEMPLATES / f"{kind}.sbatch").read_text())
    return template.substitute(
        job_name=resources.job_name,
        nodes=resources.nodes,
        tasks_per_node=resources.tasks(),
        cpus_per_task=resources.cpus_per_task,
        mem=resources.mem,
        time=resources.time,
        signal_seconds=resources.signal_seconds,
        optional_sbatch=resources.optional_lines(),
        run_dir=shlex.quote(str(Path(run_dir).resolve())),
        python=shlex.quote(python),
        config_args=" ".join(f"--config {shlex.quote(str(Path(config).resolve()))}" for config in configs),
        extra_args=" ".join(shlex.quote(argument) for argument in extra_args),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["pretrain", "evaluate"])
    parser.add_argument("--config", action="append", required=True, help="repeatable, as for the commands")
    parser.add_argument("--run-dir", required=True, help="the run directory: checkpoints, logs, slurm-*.out")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus-per-node", type=int, default=0)
    parser.add_argument("--tasks-per-node", type=int)
    parser.add_argument("--cpus-per-task", type=int, default=8)
    parser.add_argument("--mem", default="64G")
    parser.add_argument("--time", default="24:00:00")
    parser.add_argument("--partition")
    parser.add_argument("--account")
    parser.add_argument("--job-name", default="selfsup")
    parser.add_argument("--signal-seconds", type=int, default=120)
    parser.add_argument(
        "--sbatch", action="append", default=[], help="an extra #SBATCH option, e.g. constraint=a100; repeatable"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the script, submit nothing")
    args, extra = parser.parse_known_args(argv)
    for config in args.config:
        if not Path(config).is_file():
            parser.error(f"config not found: {config}")
    resources = Resources(
        args.nodes,
        args.gpus_per_node,
        args.tasks_per_node,
        args.cpus_per_task,
        args.mem,
        args.time,
        args.partition,
        args.account,
        args.job_name,
        args.signal_seconds,
        args.sbatch,
    )
    script = render(args.kind, args.config, args.run_dir, resources, extra)
    if args.dry_run:
        print(script)
        return
    path = Path(args.run_dir) / f"{args.kind}.sbatch"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    submitted = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True)
    if submitted.returncode != 0:
        print(f"slurm.launch: error: sbatch refused {path}: {submitted.stderr.strip()}", file=sys.stderr)
        sys.exit(2)
    print(f"submitted job {submitted.stdout.strip()}: {path}")


if __name__ == "__main__":
    main()
