"""Bad input to ``selfsup launch``, one row a case: refused in one line, no script printed, nothing written.

Each row: an id, the arguments after ``selfsup launch`` (the kind first), the expected
exit code and a fragment of the expected message. ``--config`` (a digits config of the
kind) and ``--run-dir`` (``<tmp>/run``, which does not exist) are added after the kind
unless the row gives its own, and ``--dry-run`` always. ``{tmp}`` in an argument is the
test's directory, which holds ``notes.txt`` and a few configs (binary, a list, broken,
empty, and ``other.yaml``); afterwards it holds nothing new, and no ``#SBATCH`` line was
printed. Adding a case is adding a line.
"""

import shlex
import subprocess
from pathlib import Path

import pytest

from selfsup.cli import main
from tests.helpers import REPO

CONFIGS = {
    "pretrain": str(REPO / "configs" / "pretrain" / "simclr_digits.yaml"),
    "evaluate": str(REPO / "configs" / "downstream" / "digits.yaml"),
}
P, E = ["pretrain"], ["evaluate"]

ROWS = [
    # --nodes, --gpus-per-node, --tasks-per-node, --cpus-per-task.
    ("nodes zero", P + ["--nodes", "0"], 2, "--nodes must be an integer in [1, 100000], got 0"),
    ("nodes negative", P + ["--nodes", "-2"], 2, "--nodes must be an integer in [1, 100000]"),
    ("nodes huge", P + ["--nodes", "1000000"], 2, "--nodes must be an integer in [1, 100000]"),
    ("nodes not a number", P + ["--nodes", "two"], 2, "--nodes"),
    ("nodes with a directive", P + ["--nodes", "2\n#SBATCH --qos=high"], 2, "--nodes"),
    ("GPUs negative", P + ["--gpus-per-node", "-1"], 2, "--gpus-per-node must be an integer in [0, 1024]"),
    ("GPUs huge", P + ["--gpus-per-node", "5000"], 2, "--gpus-per-node must be an integer in [0, 1024]"),
    ("GPUs not a number", P + ["--gpus-per-node", "eight"], 2, "--gpus-per-node"),
    ("tasks zero", P + ["--tasks-per-node", "0"], 2, "--tasks-per-node must be an integer in [1, 1024]"),
    ("tasks negative", P + ["--tasks-per-node", "-4"], 2, "--tasks-per-node must be an integer in [1, 1024]"),
    ("tasks huge", P + ["--tasks-per-node", "10000000"], 2, "--tasks-per-node must be an integer in [1, 1024]"),
    ("tasks beyond the GPUs", P + ["--gpus-per-node", "2", "--tasks-per-node", "4"], 2, "one task per GPU"),
    ("CPUs zero", P + ["--cpus-per-task", "0"], 2, "--cpus-per-task must be an integer in [1, 100000]"),
    ("CPUs negative", P + ["--cpus-per-task", "-8"], 2, "--cpus-per-task must be an integer"),
    ("CPUs by a command", P + ["--cpus-per-task", "$(nproc)"], 2, "--cpus-per-task"),
    # --mem, --time.
    ("memory not a size", P + ["--mem", "lots"], 2, "--mem must be a size such as 64G"),
    ("memory negative", P + ["--mem=-1G"], 2, "--mem must be"),
    ("memory huge", P + ["--mem", "9999999999G"], 2, "--mem must be"),
    ("memory in an unknown unit", P + ["--mem", "64GB"], 2, "--mem must be"),
    ("memory with a newline", P + ["--mem", "64G\n#SBATCH --qos=high"], 2, "--mem must be"),
    ("memory with a command", P + ["--mem", "64G; reboot"], 2, "--mem must be"),
    ("time by a command", P + ["--time", "$(reboot)"], 2, "--time must be a SLURM time"),
    ("time with backticks", P + ["--time", "`reboot`"], 2, "--time must be"),
    ("time negative", P + ["--time", "-1"], 2, "--time must be"),
    ("time with 99 minutes", P + ["--time", "24:99:00"], 2, "--time must be"),
    ("time with a newline", P + ["--time", "1:00:00\nsrun evil"], 2, "--time must be"),
    ("time shorter than the signal", P + ["--time", "1"], 2, "--signal-seconds (120) must be shorter than --time"),
    # --partition, --account, --job-name, --signal-seconds.
    ("partition with a command", P + ["--partition", "gpu;reboot"], 2, "--partition must be"),
    ("partition with a newline", P + ["--partition", "gpu\n#SBATCH --qos=high"], 2, "--partition must be"),
    ("partition empty", P + ["--partition", ""], 2, "--partition must be"),
    ("partition by a command", P + ["--partition", "$(id -u)"], 2, "--partition must be"),
    ("account with backticks", P + ["--account", "`id`"], 2, "--account must be"),
    ("account with a space", P + ["--account", "lab --qos=high"], 2, "--account must be"),
    ("job name empty", P + ["--job-name", ""], 2, "--job-name must be"),
    ("job name too long", P + ["--job-name", "j" * 200], 2, "--job-name must be"),
    ("job name with an escape", P + ["--job-name", "x\x1b[2J"], 2, "--job-name must be"),
    ("job name by a command", P + ["--job-name", "x$(reboot)"], 2, "--job-name must be"),
    ("job name not ASCII", P + ["--job-name", "jöb"], 2, "--job-name must be"),
    ("signal zero", P + ["--signal-seconds", "0"], 2, "--signal-seconds must be an integer in [1, 65535]"),
    ("signal negative", P + ["--signal-seconds", "-120"], 2, "--signal-seconds must be an integer"),
    ("signal huge", P + ["--signal-seconds", "70000"], 2, "--signal-seconds must be an integer"),
    ("signal not a number", P + ["--signal-seconds", "soon"], 2, "--signal-seconds"),
    # --sbatch.
    ("directive output", P + ["--sbatch", "output=/tmp/elsewhere"], 2, "directive 'output' is not one --sbatch"),
    ("directive chdir", P + ["--sbatch=--chdir=/"], 2, "directive 'chdir' is not one"),
    ("directive as a line", P + ["--sbatch", "#SBATCH --output=/tmp/x"], 2, "directive 'output' is not one"),
    ("directive the launcher writes", P + ["--sbatch", "time=1:00:00"], 2, "directive 'time' is not one"),
    ("directive of the signal", P + ["--sbatch", "signal=USR1@5"], 2, "directive 'signal' is not one"),
    ("directive export", P + ["--sbatch", "export=ALL,LD_PRELOAD=/tmp/x.so"], 2, "directive 'export'"),
    ("directive value by a command", P + ["--sbatch", "constraint=$(reboot)"], 2, "one word"),
    ("directive value with backticks", P + ["--sbatch", "comment=`id`"], 2, "one word"),
    ("directive value with a semicolon", P + ["--sbatch", "comment=a;reboot"], 2, "one word"),
    ("directive with a second line", P + ["--sbatch", "constraint=a100\nsrun evil"], 2, "control character"),
    ("directive empty", P + ["--sbatch", ""], 2, "directive '' is not one"),
    # Extra arguments.
    ("run directory moved", P + ["--trainer.default_root_dir=/tmp/elsewhere"], 2, "set by the launcher"),
    ("run directory moved by an abbreviation", P + ["--trainer.default_root", "/x"], 2, "set by the launcher"),
    ("run directory moved by a group", P + ["--trainer", "{default_root_dir: /x}"], 2, "set by the launcher"),
    ("nodes overridden", P + ["--trainer.num_nodes", "64"], 2, "set by the launcher"),
    ("devices overridden", P + ["--trainer.devices=64"], 2, "set by the launcher"),
    ("checkpoint forced", P + ["--ckpt_path", "/tmp/other.ckpt"], 2, "set by the launcher"),
    ("second config after the end of options", P + ["--", "--config={tmp}/other.yaml"], 2, "set by the launcher"),
    ("output directory moved", E + ["--output_dir", "/tmp/elsewhere"], 2, "set by the launcher"),
    ("evaluation devices overridden", E + ["--hardware.devices", "8"], 2, "set by the launcher"),
    ("evaluation nodes overridden by a group", E + ["--hardware", "{num_nodes: 2}"], 2, "set by the launcher"),
    ("argument with a newline", P + ["--model.init_args.lr", "0.1\nrm -rf ~"], 2, "control character"),
    ("argument with a carriage return", P + ["--model.init_args.lr=0.1\r"], 2, "control character"),
    # The run directory.
    ("run directory with a newline", P + ["--run-dir", "{tmp}/run\nsrun evil"], 2, "control character"),
    ("run directory with a dollar", P + ["--run-dir", "{tmp}/run$HOME"], 2, "--run-dir"),
    ("run directory with backticks", P + ["--run-dir", "{tmp}/run`id`"], 2, "--run-dir"),
    ("run directory with a space", P + ["--run-dir", "{tmp}/my run"], 2, "--run-dir"),
    ("run directory empty", P + ["--run-dir", ""], 2, "--run-dir must be"),
    ("run directory is a file", P + ["--run-dir", "{tmp}/notes.txt"], 2, "is a file"),
    # The config.
    ("config missing", P + ["--config", "{tmp}/nowhere.yaml"], 2, "config not found"),
    ("config a directory", P + ["--config", "{tmp}"], 2, "is a directory"),
    ("config not YAML", P + ["--config", "{tmp}/binary.yaml"], 2, "is not YAML"),
    ("config not a mapping", P + ["--config", "{tmp}/list.yaml"], 2, "not a mapping"),
    ("config with a YAML syntax error", P + ["--config", "{tmp}/broken.yaml"], 2, "is not YAML"),
    ("config of plain text", P + ["--config", "{tmp}/notes.txt"], 2, "holds a str, not a mapping"),
    ("config empty", P + ["--config", "{tmp}/empty.yaml"], 2, "holds nothing, not a mapping"),
    ("config path with a newline", P + ["--config", "{tmp}/other.yaml\nsrun evil"], 2, "control character"),
    ("unknown kind", ["train"], 2, "invalid choice: 'train'"),
]


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("a file that must survive\n")
    (tmp_path / "binary.yaml").write_bytes(b"\x00\x01key: [unclosed\n\xff")
    (tmp_path / "list.yaml").write_text("- one\n- two\n")
    (tmp_path / "other.yaml").write_text("seed_everything: 1\n")
    (tmp_path / "broken.yaml").write_text("trainer: {max_epochs: [1\n")
    (tmp_path / "empty.yaml").touch()
    return tmp_path


def arguments_of(row_arguments: list[str], directory: Path) -> list[str]:
    """The row's arguments with ``{tmp}`` filled in and the defaults it does not give added."""
    kind, *rest = [argument.replace("{tmp}", str(directory)) for argument in row_arguments]
    defaults = []
    if "--config" not in rest and kind in CONFIGS:
        defaults += ["--config", CONFIGS[kind]]
    if "--run-dir" not in rest:
        defaults += ["--run-dir", str(directory / "run")]
    return [kind, *defaults, "--dry-run", *rest]


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {str(path): path.read_bytes() if path.is_file() else None for path in directory.rglob("*")}


@pytest.mark.parametrize(("arguments", "code", "fragment"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_input_is_refused_in_one_line_before_a_script_is_written(directory, capsys, arguments, code, fragment):
    before = snapshot(directory)
    with pytest.raises(SystemExit) as exit_info:
        main(["launch", *arguments_of(arguments, directory)])
    captured = capsys.readouterr()
    assert exit_info.value.code == code, captured.err[-2000:]
    assert fragment in captured.err, captured.err[-2000:]
    assert "Traceback" not in captured.err
    assert len([line for line in captured.err.splitlines() if line.strip()]) == 1, captured.err[-2000:]
    assert "#SBATCH" not in captured.out
    assert snapshot(directory) == before
    assert not (directory / "run").exists()


def test_the_table_has_a_row_per_case_and_no_duplicates():
    assert len(ROWS) >= 25
    assert len({row[0] for row in ROWS}) == len(ROWS)
    assert len({tuple(row[1]) for row in ROWS}) == len(ROWS)


ACCEPTED = [
    "my configs/run.yaml",
    "it's/run.yaml",
    'say "hi"/run.yaml',
    "döner €/run.yaml",
    "$(reboot)/run.yaml",
    "`id`; rm -rf ~/run.yaml",
]


@pytest.mark.parametrize("kind", ["pretrain", "evaluate"])
def test_accepted_awkward_values_are_shell_quoted_into_a_script_bash_can_parse(tmp_path, capsys, kind):
    """Config paths and extra arguments with spaces, quotes, unicode or shell syntax are one word each."""
    configs = []
    for relative in ACCEPTED:
        config = tmp_path / relative
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text("seed_everything: 0\n")
        configs += ["--config", str(config)]
    extra = ["--model.init_args.name", "a b 'c' \"d\" $(reboot) `id`; ünï"]
    run_dir = tmp_path / "run_ü"  # not ASCII, and accepted: refused only where #SBATCH --output would misread it
    main(["launch", kind, *configs, "--run-dir", str(run_dir), "--dry-run", *extra])
    script = capsys.readouterr().out
    checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    for relative in ACCEPTED:
        assert f"--config {shlex.quote(str((tmp_path / relative).resolve()))}" in script
    assert " ".join(shlex.quote(argument) for argument in extra) in script
    assert shlex.quote(str(run_dir.resolve())) in script
    assert not run_dir.exists()
