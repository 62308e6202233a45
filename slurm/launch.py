"""Render an sbatch script from a config plus resources, and submit it (or print it).

    selfsup launch pretrain --config configs/pretrain/simclr_imagenet.yaml \\
        --run-dir runs/simclr_imagenet --nodes 4 --gpus-per-node 8 --cpus-per-task 10 \\
        --mem 480G --time 2-00:00:00 --partition gpu --account myproject --dry-run
    selfsup launch evaluate --config configs/downstream/cifar10_linear.yaml \\
        --run-dir runs/eval_cifar --gpus-per-node 4

One task per GPU (``--tasks-per-node`` defaults to ``--gpus-per-node``, or 1 without
GPUs); Lightning reads the SLURM environment, saves an HPC checkpoint on the signal sent
``--signal-seconds`` before the time limit, and requeues the job, which resumes from the
newest checkpoint of the run directory. ``--sbatch constraint=a100`` adds any #SBATCH line.
Without ``--dry-run`` the script is written to ``<run-dir>/<kind>.sbatch`` and submitted.

Every value that enters the script is untrusted (it may come from a sweep file or
another tool): resources are checked against the forms SLURM accepts, extra ``#SBATCH``
directives are taken from an allow-list, paths and arguments are shell-quoted, and
neither may contain control characters. Extra arguments cannot move the run out of its
run directory or override the allocation the launcher derived.
"""

import argparse
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from selfsup.errors import ConfigurationError

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

    def __post_init__(self) -> None:
        for name, low, high in (
            ("nodes", 1, 100_000),
            ("gpus_per_node", 0, 1024),
            ("cpus_per_task", 1, 100_000),
            ("signal_seconds", 1, 65_535),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigurationError(
                    f"--{name.replace('_', '-')} must be an integer in [{low}, {high}], got {value!r}."
                )
        if self.tasks_per_node is not None and not (isinstance(self.tasks_per_node, int) and self.tasks_per_node >= 1):
            raise ConfigurationError(f"--tasks-per-node must be an integer >= 1, got {self.tasks_per_node!r}.")
        _check("job-name", self.job_name, NAME, "letters, digits and _ . + -")
        _check("mem", self.mem, MEMORY, "a size such as 64G or 480000M")
        _check("time", self.time, TIME, "a SLURM time such as 24:00:00 or 2-00:00:00")
        for name, value in (("partition", self.partition), ("account", self.account)):
            if value is not None:
                _check(name, value, NAMES, "names of letters, digits and _ . + -, separated by commas")
        for line in self.sbatch_lines:
            _sbatch_option(line)

    def tasks(self) -> int:
        return self.tasks_per_node or max(1, self.gpus_per_node)

    def optional_lines(self) -> str:
        lines = [f"--gpus-per-node={self.gpus_per_node}"] if self.gpus_per_node else []
        lines += [f"--partition={self.partition}"] if self.partition else []
        lines += [f"--account={self.account}"] if self.account else []
        lines += [_sbatch_option(line) for line in self.sbatch_lines]
        return "\n".join(f"#SBATCH {line}" for line in lines)


NAME = re.compile(r"[A-Za-z0-9_.+-]{1,128}")
NAMES = re.compile(r"[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*")
MEMORY = re.compile(r"[0-9]{1,9}[KMGT]?")
TIME = re.compile(r"([0-9]{1,5}-)?[0-9]{1,5}(:[0-9]{1,2}){0,2}")
RUN_DIR = re.compile(r"[A-Za-z0-9_./+,=-]+")
SBATCH_VALUE = re.compile(r"[A-Za-z0-9_.,:@%+=/*-]{1,512}")
#: Directives ``--sbatch`` may add; the launcher writes the others itself.
ALLOWED_DIRECTIVES = frozenset(
    {
        "account",
        "begin",
        "comment",
        "constraint",
        "cpus-per-gpu",
        "dependency",
        "exclude",
        "exclusive",
        "gpus",
        "gpus-per-task",
        "gres",
        "hint",
        "licenses",
        "mail-type",
        "mail-user",
        "mem-per-cpu",
        "mem-per-gpu",
        "nice",
        "nodelist",
        "qos",
        "reservation",
        "switches",
        "wckey",
    }
)
#: Arguments the launcher sets itself: the run directory, the resumed checkpoint and the allocation.
RESERVED_ARGUMENTS = (
    "--trainer.default_root_dir",
    "--output_dir",
    "--ckpt_path",
    "--trainer.num_nodes",
    "--trainer.devices",
    "--hardware.num_nodes",
    "--hardware.devices",
)


def _check(name: str, value, pattern: re.Pattern, expected: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigurationError(f"--{name} must be {expected}, got {value!r}.")


def _no_control_characters(what: str, value: str) -> str:
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise ConfigurationError(f"{what} {value!r} contains a control character (a newline, tab, ...); remove it.")
    return value


def _sbatch_option(line: str) -> str:
    """``constraint=a100``, ``--constraint=a100`` or ``#SBATCH --constraint=a100`` -> ``--constraint=a100``.

    The directive must be on :data:`ALLOWED_DIRECTIVES` and its value one word of safe characters.
    """
    _no_control_characters("--sbatch", line)
    option = line.removeprefix("#SBATCH").strip().removeprefix("--")
    name, _, value = option.partition("=")
    if name not in ALLOWED_DIRECTIVES:
        raise ConfigurationError(
            f"--sbatch {line!r}: directive {name!r} is not one --sbatch may add; allowed: "
            f"{', '.join(sorted(ALLOWED_DIRECTIVES))} (the launcher writes the job's resources, output and signal)."
        )
    if value and not SBATCH_VALUE.fullmatch(value):
        raise ConfigurationError(
            f"--sbatch {line!r}: the value must be one word of letters, digits and _ . , : @ % + = / * -."
        )
    return f"--{name}={value}" if value else f"--{name}"


def _checked_path(what: str, path: str) -> str:
    resolved = str(Path(_no_control_characters(what, str(path))).resolve())
    return shlex.quote(resolved)


def _checked_run_dir(run_dir: str) -> str:
    """The resolved run directory; it also enters ``#SBATCH --output``, where SLURM reads ``%`` and no quotes."""
    resolved = str(Path(_no_control_characters("--run-dir", str(run_dir))).resolve())
    if not RUN_DIR.fullmatch(resolved):
        raise ConfigurationError(
            f"--run-dir {resolved!r} must be a path of letters, digits and _ . / + , = - only "
            "(no spaces, quotes or %, which #SBATCH --output would misread)."
        )
    return resolved


def _checked_arguments(arguments) -> list[str]:
    for argument in arguments:
        _no_control_characters("the extra argument", argument)
        if argument.split("=")[0] in RESERVED_ARGUMENTS:
            raise ConfigurationError(
                f"the extra argument {argument} is set by the launcher (--run-dir, --nodes, --tasks-per-node, and "
                "the newest checkpoint of the run directory on restart); remove it."
            )
    return [shlex.quote(argument) for argument in arguments]


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
        run_dir=_checked_run_dir(run_dir),
        python=shlex.quote(python),
        config_args=" ".join(f"--config {_checked_path('--config', config)}" for config in configs),
        extra_args=" ".join(_checked_arguments(extra_args)),
    )


def main(arguments: list[str]) -> None:
    """Write an sbatch script for a pretraining or evaluation run and submit it (or print it)."""
    parser = argparse.ArgumentParser(
        prog="selfsup launch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    args, extra = parser.parse_known_args(arguments)
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
        raise ConfigurationError(f"sbatch refused {path}: {submitted.stderr.strip()}")
    print(f"submitted job {submitted.stdout.strip()}: {path}")
