"""The downstream commands' argument parsing: one-line errors and a YAML loader that refuses repeated keys.

Shared by ``selfsup evaluate`` (:mod:`downstream.evaluate`) and ``selfsup similarity``
(:mod:`downstream.similarity`), so that a bad option or config value is one line (exit 2)
in both, and a checkpoint listed twice under one name is an error rather than PyYAML's
silent last-one-wins.
"""

import re

import yaml
from jsonargparse import ArgumentParser, get_loader, set_loader

from selfsup.errors import ConfigurationError


class EvaluateParser(ArgumentParser):
    """Reports a bad argument or config value as one line, without the usage screen.

    The error becomes a :class:`ConfigurationError`, which the command's error boundary
    prints alone (exit code 2); ``--help`` lists the options.
    """

    command = "evaluate"

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:
            return super().error(message, ex)
        raise ConfigurationError(f"{_one_line(message)} (selfsup {self.command} --help lists the options)") from None


def _one_line(message: str) -> str:
    """jsonargparse's message on one line, in the words of the other checks: ``knn.k must be an integer, got 2.5``."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    text = re.sub(r"Parser key \"([^\"]+)\": Expected a", r"\1 Expected a", text)
    text = re.sub(r"Parser key \"([^\"]+)\":", r"\1:", text)
    text = re.sub(r"Expected a <class '(\w+)'>", lambda found: f"must be {_TYPE_NAMES.get(found[1], found[1])}", text)
    text = re.sub(r"Expected a typing\.Literal\[(.*?)\]", r"must be one of \1", text)
    return text.replace(". Got value:", ", got")


_TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "list": "a list", "dict": "a mapping"}


def _load_yaml_with_unique_keys(text: str):
    """jsonargparse's YAML loader, refusing a mapping that gives a key twice (a checkpoint listed twice)."""
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        document = None  # the loader below reports it
    _refuse_duplicate_keys(document, "")
    return get_loader("yaml")(text)


def _refuse_duplicate_keys(node, where: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark)
            path = f"{where}.{name}" if where else name
            if name in seen:
                raise ConfigurationError(
                    f"{path} is given twice (line {key.start_mark.line + 1}); PyYAML would keep the last one "
                    "silently: give each key once."
                )
            seen.add(name)
            _refuse_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{where}[{index}]")


UNIQUE_KEYS_MODE = "yaml_unique_keys"


def use_unique_keys_loader() -> None:
    """Register the loader as jsonargparse's ``parser_mode`` :data:`UNIQUE_KEYS_MODE`."""
    set_loader(UNIQUE_KEYS_MODE, _load_yaml_with_unique_keys, (yaml.YAMLError,))
