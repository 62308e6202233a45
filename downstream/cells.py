"""The matrix's values, kept one JSON line each in ``<output_dir>/cells.jsonl`` as they are computed.

Every value of every protocol on every (checkpoint, dataset, seed) cell is appended,
flushed and fsynced as soon as it is computed, with a fingerprint: a hash of everything
the value depends on (:func:`fingerprint`). A rerun of the matrix reuses each value
whose fingerprint is in the file and computes the others, so a killed run loses at most
the protocol it was computing, and a changed recipe recomputes only that protocol.
A line cut short by a kill or a full disk, or any line that is not one of these, is
ignored; a full disk ends the run with :class:`~selfsup.errors.DiskFull`, the values
already in the file kept.

A trained protocol's value carries the per-example test losses of its classifier
(``losses``, six significant digits), from which the report computes Taskonomy's affinity.

Only rank 0 writes. Every rank reads the file once, when the matrix starts, and all
read the same lines: rank 0 writes its first value only after its first Trainer has
run, and a Trainer runs only once every rank has started (and so has read the file).
"""

import hashlib
import json
import os
from pathlib import Path

from selfsup.errors import DiskFull, disk_full_in


def fingerprint(**parts) -> str:
    """A hash of ``parts`` (JSON-serialisable; dict order does not matter)."""
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class CellStore:
    """The values of ``cells.jsonl`` by fingerprint; :meth:`add` appends one (on disk only if ``write``)."""

    def __init__(self, path: Path, write: bool) -> None:
        self.path, self.write = path, write
        self.values: dict[str, float] = {}
        self.losses: dict[str, list[float]] = {}
        self._ends_with_newline = True
        if path.is_file():
            text = path.read_text()
            self._ends_with_newline = text.endswith("\n") or not text
            for line in text.splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("fingerprint"), str):
                    if isinstance(entry.get("value"), (int, float)) and not isinstance(entry["value"], bool):
                        self.values[entry["fingerprint"]] = float(entry["value"])
                        if _is_list_of_numbers(entry.get("losses")):
                            self.losses[entry["fingerprint"]] = [float(loss) for loss in entry["losses"]]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def add(self, key: str, value: float, losses: list[float] | None = None, **description) -> None:
        """Keep ``value`` (and per-example ``losses``) under fingerprint ``key``; write them with ``description``."""
        self.values[key] = value
        entry = {"fingerprint": key, **description, "value": value}
        if losses is not None:
            self.losses[key] = entry["losses"] = [float(f"{loss:.6g}") for loss in losses]
        if not self.write:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry)
        try:
            with open(self.path, "a") as stream:
                stream.write(("" if self._ends_with_newline else "\n") + line + "\n")
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as error:
            if disk_full_in(error) is None:
                raise
            raise DiskFull(
                f"no space left to add a value to {self.path} ({error.strerror}); the {len(self.values) - 1} values "
                "before it are kept there: free space and rerun to compute the rest."
            ) from error
        self._ends_with_newline = True


def _is_list_of_numbers(values) -> bool:
    return isinstance(values, list) and all(
        isinstance(value, (int, float)) and not isinstance(value, bool) for value in values
    )
