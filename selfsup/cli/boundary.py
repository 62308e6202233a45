"""The error boundary every ``selfsup`` subcommand runs in, and its exit codes.

A user error (:class:`~selfsup.errors.ConfigurationError`, Lightning's
``MisconfigurationException``, found anywhere in the chain of causes) is printed as one
line on stderr, by rank 0 only, and ends the command with exit code 2; a diverged loss
(:class:`~selfsup.errors.NonFiniteLossError`) with 3, a run stopped by SIGTERM or SIGINT
after saving its state (:class:`~selfsup.errors.RunInterrupted`) with 4, a write that
found the disk full (:class:`~selfsup.errors.DiskFull`, or any out-of-space ``OSError``)
with 5, a command stopped by SIGINT before it could save anything (a second Ctrl-C, or
one outside training) with 130, the shell's convention. Anything else is a bug in this
project or a library: its traceback is kept (exit code 1).
"""

import sys
from collections.abc import Callable

from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.utilities import rank_zero_only

from selfsup.errors import ConfigurationError, DiskFull, NonFiniteLossError, RunInterrupted, disk_full_in

EXIT_BUG, EXIT_USER_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_DISK_FULL, EXIT_SIGINT = 1, 2, 3, 4, 5, 130
EXIT_CODES = {
    0: "success",
    EXIT_BUG: "a bug (with its traceback): please report it",
    EXIT_USER_ERROR: "bad input: one line on stderr names the problem and the fix",
    EXIT_DIVERGED: "the training loss became NaN or infinite (model.init_args.non_finite_loss)",
    EXIT_INTERRUPTED: "stopped by SIGTERM or SIGINT after saving its state: the message names the checkpoint",
    EXIT_DISK_FULL: "a write found the disk full (or the quota spent): what was written before is intact",
    EXIT_SIGINT: "stopped by SIGINT before anything could be saved (a second Ctrl-C, or one outside training)",
}
USER_ERRORS = (ConfigurationError, NonFiniteLossError, RunInterrupted, DiskFull, MisconfigurationException)
EXIT_CODE_OF = {NonFiniteLossError: EXIT_DIVERGED, RunInterrupted: EXIT_INTERRUPTED, DiskFull: EXIT_DISK_FULL}


def run_guarded(name: str, command: Callable[[list[str]], None], arguments: list[str]) -> None:
    """Run ``command(arguments)``; turn a user error into one line and its exit code."""
    try:
        command(arguments)
    except KeyboardInterrupt:
        _stopped_by_sigint(name)
    except SystemExit as error:
        if isinstance(error.__context__, KeyboardInterrupt):  # Lightning's Ctrl-C handler exits with 1
            _stopped_by_sigint(name)
        raise
    except Exception as error:
        cause = user_error_in(error)
        if cause is None and (no_space := disk_full_in(error)) is not None:
            cause = DiskFull(f"no space left to write {no_space.filename or 'a file'}: {no_space.strerror}.")
        if cause is None:
            raise
        if rank_zero_only.rank == 0:
            print(f"selfsup {name}: error: {without_worker_traceback(str(cause))}", file=sys.stderr)
        sys.exit(EXIT_CODE_OF.get(type(cause), EXIT_USER_ERROR))


def _stopped_by_sigint(name: str) -> None:
    if rank_zero_only.rank == 0:
        print(
            f"selfsup {name}: stopped by SIGINT before its state was saved; what was written before is kept "
            "(resume a training run from its newest checkpoint with --ckpt_path).",
            file=sys.stderr,
        )
    sys.exit(EXIT_SIGINT)


def user_error_in(error: BaseException | None) -> Exception | None:
    """The error meant for the user behind ``error``, if any: parsers and loaders wrap them."""
    while error is not None:
        if isinstance(error, USER_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None


def without_worker_traceback(message: str) -> str:
    """The original message of an error a DataLoader worker re-raised with its traceback inside."""
    if "Original Traceback" not in message:
        return message
    last_line = message.rstrip().splitlines()[-1]
    return last_line.split(": ", 1)[-1]
