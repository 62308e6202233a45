"""Checks on a checkpoint archive before anything in it is loaded: its sizes, declared and real.

``torch.save`` writes a zip archive of uncompressed records (one per tensor storage) and a
pickle (``data.pkl``) that declares every storage's size. A crafted file can make
``torch.load`` allocate far more than it holds; :func:`refuse_inflating_archive` reads the
archive's directory and the pickle's declarations (without importing or calling anything)
and refuses such a file, and any file above the configurable size limit.
"""

import io
import math
import os
import pickle
import zipfile
from pathlib import Path

import torch

from selfsup.errors import ConfigurationError


def refuse_inflating_archive(path: Path) -> None:
    """Refuse, before anything is allocated, an archive that would unpack to more than it holds.

    ``torch.save`` stores every record uncompressed, each tensor storage in a record of
    exactly its size. A crafted file can deflate gigabytes into a few megabytes, or
    declare in its pickle a storage far larger than its record; the loader would
    allocate what is declared. The total is also capped by :func:`checkpoint_size_limit`.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            records = {record.filename: record for record in archive.infolist()}
            pickles = [name for name in records if name.endswith("data.pkl")]
            storages = _declared_storages(archive.read(pickles[0])) if len(pickles) == 1 else []
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise ConfigurationError(f"{path} is not a readable checkpoint (corrupt archive): {error}") from None
    compressed = [name for name, record in records.items() if record.compress_type != zipfile.ZIP_STORED]
    declared = sum(record.file_size for record in records.values())
    if compressed or declared > path.stat().st_size:
        raise ConfigurationError(
            f"refusing to load {path}: it declares {_readable(declared)} of data in a "
            f"{_readable(path.stat().st_size)} file ({len(compressed)} compressed records; torch.save writes "
            "none). It was not written by torch.save; re-save the weights from a trusted copy."
        )
    folder = pickles[0].removesuffix("data.pkl") if pickles else ""
    for key, size in storages:
        record = records.get(f"{folder}data/{key}")
        if record is None or size > record.file_size:
            held = "no record" if record is None else f"a record of {record.file_size} bytes"
            raise ConfigurationError(
                f"refusing to load {path}: tensor storage {key!r} declares {size} bytes but the file has {held} "
                "for it. It was not written by torch.save; re-save the weights from a trusted copy."
            )
    refuse_over_limit(path, declared)


def refuse_over_limit(path: Path, size: int) -> None:
    """Refuse a file that holds more than :func:`checkpoint_size_limit` bytes."""
    limit = checkpoint_size_limit()
    if size > limit:
        raise ConfigurationError(
            f"refusing to load {path}: it holds {_readable(size)}, more than the limit of "
            f"{_readable(limit)}; raise it with {SIZE_LIMIT_VARIABLE}=<GiB> if the file is trusted."
        )


SIZE_LIMIT_VARIABLE = "SELFSUP_CHECKPOINT_LIMIT_GIB"
DEFAULT_SIZE_LIMIT_GIB = 64


def checkpoint_size_limit() -> int:
    """The most bytes a checkpoint may hold: ``$SELFSUP_CHECKPOINT_LIMIT_GIB`` GiB, 64 GiB by default."""
    text = os.environ.get(SIZE_LIMIT_VARIABLE, str(DEFAULT_SIZE_LIMIT_GIB))
    try:
        gib = float(text)
    except ValueError:
        gib = float("nan")
    if not (math.isfinite(gib) and gib > 0):
        raise ConfigurationError(f"{SIZE_LIMIT_VARIABLE} must be a finite number of GiB > 0, got {text!r}.")
    return int(gib * 2**30)


def _readable(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.2f} GiB"


class _Placeholder:
    """Stands for every class a checkpoint's pickle names: built, filled and never run."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass

    def __setitem__(self, key, value) -> None:
        pass

    def append(self, value) -> None:
        pass

    def extend(self, values) -> None:
        pass


class _StorageLister(pickle.Unpickler):
    """Reads a ``data.pkl`` without importing or calling anything, noting each storage it declares."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.storages: list[tuple[str, int]] = []

    def find_class(self, module: str, name: str):
        return type(name, (_Placeholder,), {})

    def persistent_load(self, saved_id):
        if isinstance(saved_id, tuple) and len(saved_id) == 5 and saved_id[0] == "storage":
            _, storage_type, key, _, numel = saved_id
            if not (isinstance(numel, int) and numel >= 0):
                raise pickle.UnpicklingError(f"storage {key!r} declares {numel!r} elements")
            item_size = _STORAGE_ITEM_SIZES.get(getattr(storage_type, "__name__", ""), 1)
            self.storages.append((str(key), numel * item_size))
        return _Placeholder()


def _declared_storages(data_pickle: bytes) -> list[tuple[str, int]]:
    """``(record key, bytes)`` of every tensor storage ``data_pickle`` declares."""
    lister = _StorageLister(io.BytesIO(data_pickle))
    lister.load()
    return lister.storages


_STORAGE_ITEM_SIZES = {
    f"{name}Storage": torch.empty((), dtype=dtype).element_size()
    for name, dtype in (
        ("Double", torch.float64), ("Float", torch.float32), ("Half", torch.float16), ("BFloat16", torch.bfloat16),
        ("Long", torch.int64), ("Int", torch.int32), ("Short", torch.int16), ("Char", torch.int8),
        ("Byte", torch.uint8), ("Bool", torch.bool), ("ComplexDouble", torch.complex128),
        ("ComplexFloat", torch.complex64),
    )
}  # fmt: skip
