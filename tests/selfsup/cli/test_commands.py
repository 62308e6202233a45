"""The one console script: its subcommands, its help, its error boundary and exit codes."""

import pytest

from selfsup.cli import main
from selfsup.cli.boundary import run_guarded
from selfsup.errors import ConfigurationError, NonFiniteLossError
from tests.helpers import SIMCLR_DIGITS


def exit_code_of(arguments: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    return exit_info.value.code


def test_help_lists_every_subcommand_and_the_exit_codes(capsys):
    assert exit_code_of(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("fit", "evaluate", "launch"):
        assert f"  {command} " in out
    assert "2  bad input" in out and "3  the training loss" in out


def test_no_command_prints_the_help_and_fails(capsys):
    assert exit_code_of([]) == 2
    assert "commands:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["test", "predict", "validate", "fitt"])
def test_commands_that_do_not_exist_are_one_line(capsys, command):
    assert exit_code_of([command]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"unknown command {command!r}" in error


@pytest.mark.parametrize(
    "arguments",
    [["--optimizer", "Adam"], ["--optimizer=torch.optim.Adam"], ["--lr_scheduler.class_path", "StepLR"]],
)
def test_lightning_optimiser_arguments_are_refused_saying_where_the_optimiser_is(capsys, arguments):
    assert exit_code_of(["fit", "--config", SIMCLR_DIGITS, *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("selfsup fit: error:") and "model.init_args.optimizer" in error


def test_an_optimiser_section_in_a_config_file_is_refused(tmp_path, capsys):
    config = tmp_path / "adam.yaml"
    config.write_text("optimizer:\n  class_path: torch.optim.Adam\n")
    assert exit_code_of(["fit", "--config", SIMCLR_DIGITS, "--config", str(config)]) == 2
    assert "model.init_args.optimizer" in capsys.readouterr().err


def test_fit_offers_no_lightning_subcommand_but_fit(capsys):
    assert exit_code_of(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--model.help selfsup.methods.MoCo" in out.replace("\n", " ")
    assert "validate,test,predict" not in out and "usage: selfsup" in out


def _raise(error: Exception):
    def command(arguments: list[str]) -> None:
        raise error

    return command


@pytest.mark.parametrize(
    ("error", "code"),
    [(ConfigurationError("bad key"), 2), (NonFiniteLossError("loss is nan"), 3)],
)
def test_user_errors_are_one_line_with_their_exit_code(capsys, error, code):
    with pytest.raises(SystemExit) as exit_info:
        run_guarded("fit", _raise(error), [])
    assert exit_info.value.code == code
    assert capsys.readouterr().err == f"selfsup fit: error: {error}\n"


def test_a_user_error_wrapped_by_a_library_is_still_found(capsys):
    try:
        raise ConfigurationError("data.batch_size must be at least 1")
    except ConfigurationError as cause:
        wrapped = RuntimeError("parser failed")
        wrapped.__cause__ = cause
    with pytest.raises(SystemExit):
        run_guarded("fit", _raise(wrapped), [])
    assert "data.batch_size must be at least 1" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_guarded("fit", _raise(ZeroDivisionError("a bug")), [])
