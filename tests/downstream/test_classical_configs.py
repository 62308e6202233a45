"""Every config of configs/classical parses with its command: ``selfsup dictionary`` or ``selfsup sdl``."""

import pytest

from selfsup.cli import main as selfsup
from tests.helpers import REPO

CONFIGS = sorted((REPO / "configs" / "classical").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[config.stem for config in CONFIGS])
def test_every_classical_config_parses(config, capsys):
    command = config.stem.split("_")[0]
    with pytest.raises(SystemExit) as stopped:
        selfsup([command, "--config", str(config), "--print_config"])
    assert stopped.value.code in (0, None), capsys.readouterr().err
    assert "output_dir: runs/demo/" in capsys.readouterr().out


def test_there_is_a_config_for_each_classical_command():
    assert {config.stem for config in CONFIGS} == {"dictionary_digits", "sdl_digits"}
