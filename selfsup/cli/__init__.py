"""The ``selfsup`` command: one console script, a subcommand per job.

    selfsup fit --config configs/pretrain/simclr_digits.yaml        # pretraining
    selfsup evaluate --config configs/downstream/digits.yaml        # the evaluation matrix
    selfsup launch pretrain --config ... --run-dir ... --dry-run    # a SLURM job
    selfsup export backbone.pt --to safetensors --output b.safetensors  # for another tool

Subcommands are the entry points of the group ``selfsup.commands`` (``pyproject.toml``):
each is a function taking the remaining arguments. ``downstream`` and ``slurm`` register
theirs there, so ``selfsup`` never imports them, and a package built on selfsup can add
its own. Every subcommand runs inside one error boundary (:mod:`selfsup.cli.boundary`).
"""

import sys
from importlib.metadata import EntryPoint, entry_points

from selfsup.cli.boundary import EXIT_CODES, EXIT_USER_ERROR, run_guarded
from selfsup.cli.console import quiet_third_party

COMMAND_GROUP = "selfsup.commands"


def available_commands() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name)}


def usage(commands: dict[str, EntryPoint]) -> str:
    lines = ["usage: selfsup COMMAND [ARGS...]   (selfsup COMMAND --help for its options)", "", "commands:"]
    for name, entry in commands.items():
        summary = (entry.load().__doc__ or "").strip().splitlines()[0] if entry else ""
        lines.append(f"  {name:<10} {summary}")
    lines += ["", "exit codes:"]
    lines += [f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = available_commands()
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(commands), file=sys.stdout if argv else sys.stderr)
        sys.exit(0 if argv else EXIT_USER_ERROR)
    name, arguments = argv[0], argv[1:]
    if name not in commands:
        print(
            f"selfsup: error: unknown command {name!r}; the commands are {', '.join(commands)} (selfsup --help).",
            file=sys.stderr,
        )
        sys.exit(EXIT_USER_ERROR)
    quiet_third_party()
    command = commands[name].load()
    run_guarded(name, command, arguments)
