"""The exceptions a user is meant to read.

:class:`ConfigurationError` is raised wherever a configuration value, a path or a
file is wrong; :class:`NonFiniteLossError` when training diverges. The command-line
entry points catch them and print the message alone, without a traceback, then
exit with status 2 (bad input) or 3 (diverged); library callers get an ordinary
``ValueError`` or ``ArithmeticError`` subclass.
"""


class ConfigurationError(ValueError):
    """Bad input from the user: the message names the problem and what to do."""


class NonFiniteLossError(ArithmeticError):
    """The loss became NaN or infinite; the message names the step and the checkpoints kept."""
