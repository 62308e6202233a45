"""The exceptions a user is meant to read.

:class:`ConfigurationError` is raised wherever a configuration value, a path or a
file is wrong; :class:`NonFiniteLossError` when training diverges. The command-line
entry points catch them and print the message alone, without a traceback, then
exit with status 2 (bad input), 3 (diverged) or 4 (:class:`RunInterrupted`); library
callers get an ordinary ``ValueError``, ``ArithmeticError`` or ``RuntimeError`` subclass.
"""

import math


class ConfigurationError(ValueError):
    """Bad input from the user: the message names the problem and what to do."""


class NonFiniteLossError(ArithmeticError):
    """The loss became NaN or infinite; the message names the step and the checkpoints kept."""


class RunInterrupted(RuntimeError):
    """A signal stopped the run after its state was saved; the message names the checkpoint to resume from."""


def require(valid: bool, key: str, value, expected: str) -> None:
    """Raise :class:`ConfigurationError` ``"<key> must be <expected>, got <value>"`` unless ``valid``.

    Write ``valid`` as the property that must hold (``lr > 0``, not ``not lr <= 0``) so
    that NaN, which fails every comparison, is refused too.
    """
    if not valid:
        raise ConfigurationError(f"{key} must be {expected}, got {value!r}.")


def is_finite(value) -> bool:
    """A real number that is neither NaN nor infinite (booleans and strings are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
