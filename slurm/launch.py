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
run directory or override the allocation the launcher derived, whether spelled out, as an
abbreviation (``--trainer.default_root``) or inside their group (``--trainer '{...}'``);
nor can they add a config, which would override both. Every config must be a YAML
mapping. A bad value is one line naming the option, its valid form and the value (exit
code 2), and nothing is written.
"""

import argparse
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

import yaml

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
        for name, (low, high) in INTEGER_RANGES.items():
            value = getattr(self, name)
            if name == "tasks_per_node" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigurationError(
                    f"--{name.replace('_', '-')} must be an integer in [{low}, {high}], got {value!r}."
                )
        if self.gpus_per_node and self.tasks() > self.gpus_per_node:
            raise ConfigurationError(
                f"--tasks-per-node ({self.tasks()}) must be at most --gpus-per-node ({self.gpus_per_node}): one task "
                "per GPU, and Lightning would ask for a GPU per task."
            )
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


#: The integer resources and their ranges (SLURM's own limits, or far beyond any cluster's).
INTEGER_RANGES = {
    "nodes": (1, 100_000),
    "gpus_per_node": (0, 1024),
    "tasks_per_node": (1, 1024),
    "cpus_per_task": (1, 100_000),
    "signal_seconds": (1, 65_535),
}
NAME = re.compile(r"[A-Za-z0-9_.+-]{1,128}")
NAMES = re.compile(r"[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*")
MEMORY = re.compile(r"[0-9]{1,9}[KMGT]?")
#: SLURM's time forms: minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]].
TIME = re.compile(
    r"[0-9]{1,7}(:[0-5]?[0-9])?|[0-9]{1,5}:[0-5]?[0-9]:[0-5]?[0-9]|[0-9]{1,5}-[0-9]{1,2}(:[0-5]?[0-9]){0,2}"
)
#: Word characters (letters and digits of any script, ``_``) and ``. / + , = -``: no space, quote, ``%`` or ``$``.
RUN_DIR = re.compile(r"[\w./+,=-]+")
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
    "--config",
    "--trainer.default_root_dir",
    "--output_dir",
    "--ckpt_path",
    "--trainer.num_nodes",
    "--trainer.devices",
    "--hardware.num_nodes",
    "--hardware.devices",
)


def time_seconds(time: str) -> int | None:
    """Seconds of a SLURM time that :data:`TIME` accepts; ``None`` for ``0``, no limit."""
    days, _, clock = time.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    else:
        hours, minutes, seconds = {1: [0, parts[0], 0], 2: [0, *parts], 3: parts}[len(parts)]
    total = ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds
    return total or None


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


def _checked_config(config: str) -> str:
    """The config's shell-quoted resolved path, once it is a readable YAML mapping."""
    _no_control_characters("--config", str(config))
    path = Path(config)
    if path.is_dir():
        raise ConfigurationError(f"--config {config} is a directory, not a YAML file.")
    if not path.is_file():
        raise ConfigurationError(f"config not found: --config {config}")
    try:
        content = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigurationError(f"--config {config} is not YAML: {first_line}") from None
    except OSError as error:
        raise ConfigurationError(f"cannot read --config {config}: {error.strerror or error}") from None
    if not isinstance(content, dict):
        held = "nothing" if content is None else f"a {type(content).__name__}"
        raise ConfigurationError(f"--config {config} holds {held}, not a mapping of keys as the commands read it.")
    return _checked_path("--config", config)


def _checked_run_dir(run_dir: str) -> str:
    """The resolved run directory; it also enters ``#SBATCH --output``, where SLURM reads ``%`` and no quotes."""
    if not str(run_dir).strip():
        raise ConfigurationError(f"--run-dir must be a directory path, got {run_dir!r}.")
    resolved = str(Path(_no_control_characters("--run-dir", str(run_dir))).resolve())
    if not RUN_DIR.fullmatch(resolved):
        raise ConfigurationError(
            f"--run-dir {resolved!r} must be a path of letters, digits and _ . / + , = - only "
            "(no spaces, quotes, % or $, which #SBATCH --output would misread)."
        )
    if Path(resolved).exists() and not Path(resolved).is_dir():
        raise ConfigurationError(f"--run-dir {resolved} is a file, not a directory; choose another run directory.")
    return resolved


def _checked_arguments(arguments) -> list[str]:
    for argument in arguments:
        _no_control_characters("the extra argument", argument)
        option = argument.split("=", 1)[0]
        # argparse takes an unambiguous abbreviation (--trainer.default_root) and a group's
        # values as one mapping (--trainer '{default_root_dir: ...}'): both reach a reserved key.
        reached = [reserved for reserved in RESERVED_ARGUMENTS if len(option) > 2 and reserved.startswith(option)]
        if reached:
            group = " (a group: give its other keys one by one)" if option not in reached else ""
            raise ConfigurationError(
                f"the extra argument {argument} reaches {', '.join(reached)}{group}, which is set by the launcher "
                "from --config, --run-dir, --nodes and --tasks-per-node (and the newest checkpoint of the run "
                "directory on restart); remove it."
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
    limit = time_seconds(resources.time)
    if kind == "pretrain" and limit is not None and resources.signal_seconds >= limit:
        raise ConfigurationError(
            f"--signal-seconds ({resources.signal_seconds}) must be shorter than --time ({resources.time}, "
            f"{limit} s): the checkpoint is saved on the signal that many seconds before the limit."
        )
    run_dir = _checked_run_dir(run_dir)
    return template.substitute(
        job_name=resources.job_name,
        nodes=resources.nodes,
        tasks_per_node=resources.tasks(),
        cpus_per_task=resources.cpus_per_task,
        mem=resources.mem,
        time=resources.time,
        signal_seconds=resources.signal_seconds,
        optional_sbatch=resources.optional_lines(),
        run_dir=run_dir,
        run_dir_quoted=shlex.quote(run_dir),
        python=shlex.quote(python),
        config_args=" ".join(f"--config {_checked_config(config)}" for config in configs),
        extra_args=" ".join(_checked_arguments(extra_args)),
    )


class LaunchParser(argparse.ArgumentParser):
    """Reports a bad argument as one line (exit code 2 through the command's error boundary), without the usage."""

    def error(self, message: str):
        raise ConfigurationError(f"{message} (selfsup launch --help lists the options)")


def _integer(text: str) -> int | str:
    """The integer ``text`` spells in ASCII digits; otherwise ``text`` itself, which :class:`Resources` refuses
    naming the option and its range (``int()`` would also take ``" 2\n"``, ``"2_0"`` and other scripts' digits)."""
    return int(text) if re.fullmatch(r"-?[0-9]{1,12}", text) else text


def main(arguments: list[str]) -> None:
    """Write an sbatch script for a pretraining or evaluation run and submit it (or print it)."""
    parser = LaunchParser(
        prog="selfsup launch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=["pretrain", "evaluate"])
    parser.add_argument("--config", action="append", required=True, help="repeatable, as for the commands")
    parser.add_argument("--run-dir", required=True, help="the run directory: checkpoints, logs, slurm-*.out")
    parser.add_argument("--nodes", type=_integer, default=1)
    parser.add_argument("--gpus-per-node", type=_integer, default=0)
    parser.add_argument("--tasks-per-node", type=_integer)
    parser.add_argument("--cpus-per-task", type=_integer, default=8)
    parser.add_argument("--mem", default="64G")
    parser.add_argument("--time", default="24:00:00")
    parser.add_argument("--partition")
    parser.add_argument("--account")
    parser.add_argument("--job-name", default="selfsup")
    parser.add_argument("--signal-seconds", type=_integer, default=120)
    parser.add_argument(
        "--sbatch", action="append", default=[], help="an extra #SBATCH option, e.g. constraint=a100; repeatable"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the script, submit nothing")
    args, extra = parser.parse_known_args(arguments)
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
