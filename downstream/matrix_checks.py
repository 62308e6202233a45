"""The evaluation matrix's settings, checked before the first cell: one line naming the key, nothing written.

:func:`downstream.evaluate.evaluate_matrix` calls these in order: the settings themselves
(protocols, labels, seeds, output directory, hardware), then what depends on the
backbones (frozen stages) and on each dataset's labels, then the output directory's
contents (cells file, another matrix's report), all before it creates anything.
"""

import csv
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Literal, get_args

from lightning_fabric.utilities.exceptions import MisconfigurationException

from downstream.hardware import Hardware
from downstream.recipes import FinetuneRecipe
from downstream.report import Result
from downstream.representations import Representation
from downstream.splits import labels_of
from selfsup.errors import ConfigurationError, require
from selfsup.runtime import check_devices

Protocol = Literal["knn", "linear", "logistic", "logme", "layerwise", "finetune", "transferability"]
ExistingResults = Literal["refuse", "overwrite"]
#: The report ``output_dir`` receives at the end; ``cells.jsonl`` holds the values it is built from.
REPORT_FILES = ("results.csv", "results.md", "results.png", "transferability.png")
CELLS_FILE = "cells.jsonl"
#: Seeds draw torch generators and samplers; numpy, if ever seeded, takes 32 bits.
MAX_SEED = 2**32 - 1


def check_settings(checkpoints, datasets, protocols, output_dir, label_fraction, labels_per_class, seeds, hardware):
    """The settings that need neither a file nor a dataset: refused before anything is read."""
    if not checkpoints or not datasets:
        raise ConfigurationError("give at least one checkpoint and one dataset (see configs/downstream/).")
    known = get_args(Protocol)
    if not protocols or any(protocol not in known for protocol in protocols):
        raise ConfigurationError(
            f"protocols must list at least one protocol of {', '.join(known)}; got {list(protocols)}."
        )
    if len(set(protocols)) != len(protocols):
        raise ConfigurationError(f"protocols must list each protocol once, got {list(protocols)}.")
    if not (isinstance(label_fraction, (int, float)) and 0 < label_fraction <= 1):  # NaN fails too
        raise ConfigurationError(f"label_fraction must lie in (0, 1] (1% is 0.01), got {label_fraction!r}.")
    require(
        labels_per_class is None or (isinstance(labels_per_class, int) and labels_per_class >= 1),
        "labels_per_class",
        labels_per_class,
        ">= 1, or null to draw label_fraction of each class instead (label_fraction must lie in (0, 1])",
    )
    if labels_per_class is not None and label_fraction != 1:
        raise ConfigurationError(
            f"give label_fraction or labels_per_class, not both: got label_fraction {label_fraction} and "
            f"labels_per_class {labels_per_class}; set label_fraction: 1.0 or labels_per_class: null."
        )
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigurationError(f"seeds must list at least one seed, each once; got {list(seeds)}.")
    if not all(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED for seed in seeds):
        raise ConfigurationError(f"seeds must be integers in [0, {MAX_SEED}], got {list(seeds)}.")
    require(isinstance(output_dir, str) and output_dir.strip() != "", "output_dir", output_dir, "a directory path")
    _check_hardware(hardware)


def _check_hardware(hardware: Hardware) -> None:
    """The hardware's ranges, then the Trainer every protocol builds from it, built once now."""
    for key, low in (("batch_size", 1), ("num_workers", 0), ("num_nodes", 1)):
        value = getattr(hardware, key)
        require(
            isinstance(value, int) and not isinstance(value, bool) and value >= low,
            f"hardware.{key}",
            value,
            f"an integer >= {low}",
        )
    try:
        check_devices(hardware.accelerator, hardware.devices)
    except ConfigurationError as error:  # it names the pretraining keys
        raise ConfigurationError(str(error).replace("trainer.", "hardware.")) from None
    try:
        hardware.trainer()
    except (MisconfigurationException, ValueError, TypeError) as error:
        settings = f"accelerator={hardware.accelerator!r}, devices={hardware.devices!r}, strategy={hardware.strategy!r}"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigurationError(
            f"hardware ({settings}, precision={hardware.precision!r}) is refused by Lightning: {first_line}"
        ) from None


def check_frozen_stages(finetune: FinetuneRecipe, rows: list[Representation]) -> None:
    for row in rows:
        if row.architecture is not None and finetune.frozen_stages > row.stages:
            raise ConfigurationError(
                f"finetune.frozen_stages must be in [0, {row.stages}] (the stages of {row.name!r}, "
                f"{row.architecture[0]}), got {finetune.frozen_stages}."
            )


def check_labels(dataset: str, splits, label_fraction: float, labels_per_class: int | None, knn) -> None:
    """``labels_per_class`` and ``knn.k`` against the labelled training split of ``dataset``."""
    counts = labels_of(splits.train).unique(return_counts=True)[1].tolist()
    if not counts:
        raise ConfigurationError(f"datasets.{dataset}: its training split holds no labelled example.")
    if labels_per_class is not None:
        require(
            labels_per_class <= min(counts),
            "labels_per_class",
            labels_per_class,
            f"<= {min(counts)}, the examples of the smallest class in the training split of {dataset}",
        )
        labelled, described = labels_per_class * len(counts), f"labels_per_class {labels_per_class}"
    else:
        labelled = sum(max(1, round(label_fraction * count)) for count in counts)
        described = f"label_fraction {label_fraction}"
    if knn is not None:
        require(
            knn.k <= labelled,
            "knn.k",
            knn.k,
            f"<= {labelled}, the labelled training examples of {dataset} ({described})",
        )


def check_output(output_dir: Path, reported: set[tuple], existing_results: str) -> None:
    """Refuse an output directory whose files this run could not use, or whose report it would lose.

    ``reported``: the (checkpoint, dataset, value name, seed) rows this matrix will write to ``results.csv``.
    """
    for name in (CELLS_FILE, *REPORT_FILES):
        path = output_dir / name
        if path.exists() and not path.is_file():
            raise ConfigurationError(
                f"output_dir={output_dir} holds {name}, which is not a file; move it away or choose another output_dir."
            )
    cells = output_dir / CELLS_FILE
    if cells.is_file():
        try:
            cells.read_text()
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"{cells} is not a file of cells (it is not UTF-8 text); move it away or choose another output_dir."
            ) from None
        except OSError as error:
            raise ConfigurationError(f"cannot read {cells}: {error.strerror or error}.") from None
    if existing_results == "overwrite":
        return
    earlier = _report_rows(output_dir)
    lost = sorted(earlier - {(row, dataset, name, str(seed)) for row, dataset, name, seed in reported})
    if lost:
        checkpoint, dataset, name, seed = lost[0]
        raise ConfigurationError(
            f"output_dir={output_dir} holds the results of another matrix: {len(lost)} of the {len(earlier)} rows "
            f"of its results.csv (such as {checkpoint!r} on {dataset} by {name}, seed {seed}) are not in this one, "
            "whose report would replace them; choose another output_dir, or set existing_results: overwrite "
            f"(the values stay in {CELLS_FILE} either way)."
        )


def _report_rows(output_dir: Path) -> set[tuple[str, str, str, str]]:
    """The (checkpoint, dataset, protocol, seed) rows of the report in ``output_dir``; empty when there is none."""
    report = output_dir / REPORT_FILES[0]
    if not report.exists():
        others = [name for name in REPORT_FILES[1:] if (output_dir / name).exists()]
        if others:
            raise ConfigurationError(
                f"output_dir={output_dir} holds {' and '.join(others)} without results.csv: a report this run would "
                "replace and cannot check; move them away, choose another output_dir, or set existing_results: "
                "overwrite."
            )
        return set()
    columns = [field.name for field in fields(Result)]
    try:
        with open(report, newline="") as stream:
            reader = csv.DictReader(stream)
            if reader.fieldnames != columns:
                raise ValueError(reader.fieldnames)
            return {(row["checkpoint"], row["dataset"], row["protocol"], row["seed"]) for row in reader}
    except (ValueError, UnicodeDecodeError, csv.Error, OSError):
        raise ConfigurationError(
            f"{report} is not a report of selfsup evaluate (columns {', '.join(columns)}), and this run would "
            "replace it; move it away, choose another output_dir, or set existing_results: overwrite."
        ) from None


def check_writable(output_dir: Path) -> None:
    """Refuse an output directory that cannot be written before computing anything."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigurationError(f"output_dir={output_dir} is a file, not a directory; choose another one.")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-check-"):
            pass
    except OSError as error:
        raise ConfigurationError(
            f"cannot write the results to output_dir={output_dir}: {error.strerror or error}; choose another one."
        ) from None
