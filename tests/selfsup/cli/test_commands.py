"""The one console script: its subcommands, its help, its error boundary and exit codes."""

import errno
import signal
import sys

import pytest

from selfsup.cli import main
from selfsup.cli.boundary import run_guarded
from selfsup.errors import ConfigurationError, DiskFull, NonFiniteLossError, RunInterrupted
from selfsup.runtime.requeue import RequeueOnSignal
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
    [
        (ConfigurationError("bad key"), 2),
        (NonFiniteLossError("loss is nan"), 3),
        (RunInterrupted("stopped by SIGTERM"), 4),
        (DiskFull("no space left to write last.ckpt"), 5),
    ],
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


def test_a_full_disk_anywhere_behind_an_error_is_exit_5_naming_the_file(capsys):
    try:
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/results.csv")
    except OSError as cause:
        wrapped = RuntimeError("[enforce fail at inline_container.cc] unexpected pos")
        wrapped.__context__ = cause
    with pytest.raises(SystemExit) as exit_info:
        run_guarded("evaluate", _raise(wrapped), [])
    assert exit_info.value.code == 5
    assert "no space left to write runs/x/results.csv: No space left on device" in capsys.readouterr().err


def _lightning_ctrl_c(arguments: list[str]) -> None:
    """What Lightning does on Ctrl-C outside training: catch KeyboardInterrupt, then sys.exit(1)."""
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        sys.exit(1)


@pytest.mark.parametrize("command", [_raise(KeyboardInterrupt()), _lightning_ctrl_c], ids=["raw", "via Lightning"])
def test_ctrl_c_before_anything_is_saved_exits_130_in_one_line(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        run_guarded("fit", command, [])
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert err.startswith("selfsup fit: stopped by SIGINT before its state was saved") and "Traceback" not in err


def test_an_ordinary_exit_passes_the_boundary_unchanged():
    with pytest.raises(SystemExit) as exit_info:
        run_guarded("fit", lambda arguments: sys.exit(0), [])
    assert exit_info.value.code == 0


def test_a_first_ctrl_c_is_recorded_for_a_collective_save_and_a_second_stops_at_once():
    requeue = RequeueOnSignal()
    requeue._record(signal.SIGINT, None)
    assert requeue._received == signal.SIGINT
    with pytest.raises(KeyboardInterrupt):
        requeue._record(signal.SIGINT, None)


def test_the_most_urgent_signal_wins_whatever_the_order():
    """SIGTERM over SIGINT over the SLURM warning: a stop is never downgraded to a requeue."""
    for order in ([signal.SIGUSR1, signal.SIGTERM], [signal.SIGTERM, signal.SIGUSR1], [signal.SIGINT, signal.SIGUSR1]):
        requeue = RequeueOnSignal()
        for signum in order:
            requeue._record(signum, None)
        assert requeue._received == max(order, key=[signal.SIGUSR1, signal.SIGINT, signal.SIGTERM].index)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT", "SIGKILL", "SIGNOPE", 10])
def test_the_requeue_signal_cannot_be_a_stop_signal_or_unknown(name):
    with pytest.raises(ValueError, match="requeue.signal_name must name a signal other than SIGTERM"):
        RequeueOnSignal(name)
