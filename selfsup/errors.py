"""The exceptions a user is meant to read.

:class:`ConfigurationError` is raised wherever a configuration value, a path or a
file is wrong; :class:`NonFiniteLossError` when training diverges. The command-line
entry points catch them and print the message alone, without a traceback, then
exit with status 2 (bad input), 3 (diverged), 4 (:class:`RunInterrupted`) or 5
(:class:`DiskFull`); library callers get an ordinary ``ValueError``,
``ArithmeticError``, ``RuntimeError`` or ``OSError`` subclass.
"""

import errno
import math


class ConfigurationError(ValueError):
    """Bad input from the user: the message names the problem and what to do."""


class NonFiniteLossError(ArithmeticError):
    """The loss became NaN or infinite; the message names the step and the checkpoints kept."""


class RunInterrupted(RuntimeError):
    """A signal stopped the run after its state was saved; the message names the checkpoint to resume from."""


class DiskFull(OSError):
    """A write failed for lack of space, of quota or over the file-size limit; what was written before is intact."""


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def disk_full_in(error: BaseException | None) -> OSError | None:
    """The out-of-space ``OSError`` behind ``error`` (writers such as ``torch.save`` wrap it), if any."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in _NO_SPACE:
            return error
        error = error.__cause__ or error.__context__
    return None


def require(valid: bool, key: str, value, expected: str) -> None:
    """Raise :class:`ConfigurationError` ``"<key> must be <expected>, got <value>"`` unless ``valid``.

    Write ``valid`` as the property that must hold (``lr > 0``, not ``not lr <= 0``) so
    that NaN, which fails every comparison, is refused too.
    """
    if not valid:
        raise ConfigurationError(f"{key} must be {expected}, got {value!r}.")


def is_integer(value) -> bool:
    """An ``int`` that is not a boolean (YAML's ``true`` is not a width)."""
    return isinstance(value, int) and not isinstance(value, bool)


def require_sizes(prefix: str, **sizes) -> None:
    """Each of ``sizes`` (widths, counts) an integer >= 1, else one line naming ``prefix + name``."""
    for name, value in sizes.items():
        require(is_integer(value) and value >= 1, prefix + name, value, "an integer >= 1")


def is_finite(value) -> bool:
    """A real number that is neither NaN nor infinite (booleans and strings are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
