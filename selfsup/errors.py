"""The one exception type for bad user input.

Raised wherever a configuration value, a path or a file is wrong. The command-line
entry points catch it and print its message alone, without a traceback, then exit
with status 2; library callers get an ordinary ``ValueError`` subclass.
"""


class ConfigurationError(ValueError):
    """Bad input from the user: the message names the problem and what to do."""
