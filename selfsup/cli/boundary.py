"""The error boundary every ``selfsup`` subcommand runs in, and its exit codes.

A user error (:class:`~selfsup.errors.ConfigurationError`, Lightning's
``MisconfigurationException``, found anywhere in the chain of causes) is printed as one
line on stderr, by rank 0 only, and ends the command with exit code 2; a diverged loss
(:class:`~selfsup.errors.NonFiniteLossError`) with 3, a run stopped by SIGTERM after saving
its state (:class:`~selfsup.errors.RunInterrupted`) with 4. Anything else is a bug in this
project or a library: its traceback is kept (exit code 1).
"""

import sys
from collections.abc import Callable

from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.utilities import rank_zero_only

from selfsup.errors import ConfigurationError, NonFiniteLossError, RunInterrupted

EXIT_BUG, EXIT_USER_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 2, 3, 4
EXIT_CODES = {
    0: "success",
    EXIT_BUG: "a bug (with its traceback): please report it",
    EXIT_USER_ERROR: "bad input: one line on stderr names the problem and the fix",
    EXIT_DIVERGED: "the training loss became NaN or infinite (model.init_args.non_finite_loss)",
    EXIT_INTERRUPTED: "stopped by SIGTERM after saving its state: the message names the checkpoint to resume from",
}
USER_ERRORS = (ConfigurationError, NonFiniteLossError, RunInterrupted, MisconfigurationException)
EXIT_CODE_OF = {NonFiniteLossError: EXIT_DIVERGED, RunInterrupted: EXIT_INTERRUPTED}


def run_guarded(name: str, command: Callable[[list[str]], None], arguments: list[str]) -> None:
    """Run ``command(arguments)``; turn a user error into one line and its exit code."""
    try:
        command(arguments)
    except Exception as error:
        cause = user_error_in(error)
        if cause is None:
            raise
        if rank_zero_only.rank == 0:
            print(f"selfsup {name}: error: {without_worker_traceback(str(cause))}", file=sys.stderr)
        sys.exit(EXIT_CODE_OF.get(type(cause), EXIT_USER_ERROR))


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
