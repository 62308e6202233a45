"""The checkpoint format: what this project writes, and every file it reads weights from.

Writer and reader of each entry live here: the ``backbone.pt`` export, the entries this
project adds to Lightning checkpoints (:data:`INPUT_FORMAT_KEY`, :data:`RANDOM_STATES_KEY`)
and :class:`InputFormat`, the record of how a backbone saw its images.

Three kinds of file load into a backbone:

* an export written by :func:`export_backbone` (``backbone.pt`` in a run directory),
  which names its architecture;
* a Lightning checkpoint of any method of this project (``last.ckpt``), whose
  hyper-parameters name the architecture and whose ``backbone.*`` weights are used;
* a bare state dict (e.g. torchvision weights), for which the caller names the
  architecture.

Prefixes that wrappers add (``module.``, ``_orig_mod.``) are removed. Files are read
with ``weights_only=True``: a checkpoint that carries pickled code is refused. Any
mismatch between file and architecture is an error listing the missing and the
unexpected keys; nothing is loaded half-way.
"""

import os
import pickle
import tempfile
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from selfsup.backbones import Backbone, build_backbone
from selfsup.errors import ConfigurationError

EXPORT_FORMAT = "selfsup-backbone/1"
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")

# The entries this project adds to a Lightning checkpoint (beside Lightning's own).
INPUT_FORMAT_KEY = "input_format"
RANDOM_STATES_KEY = "random_states"


@dataclass(frozen=True)
class InputFormat:
    """How a backbone saw its images: the side of the square input and the normalisation.

    Written into every checkpoint and ``backbone.pt`` by the run, read back by every
    evaluation, so that a backbone is evaluated on images prepared as in pretraining.
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def of(cls, datamodule) -> "InputFormat | None":
        """The format a datamodule states (``image_size``, ``mean``, ``std``); ``None`` if it states none."""
        if not all(hasattr(datamodule, key) for key in ("image_size", "mean", "std")):
            return None
        return cls(datamodule.image_size, tuple(datamodule.mean), tuple(datamodule.std))

    @classmethod
    def from_metadata(cls, metadata: dict, source: str = "the checkpoint") -> "InputFormat":
        """The format recorded in ``metadata``; :data:`DEFAULT_INPUT_FORMAT`, with a warning, if none is."""
        if all(key in metadata for key in ("image_size", "mean", "std")):
            return cls(int(metadata["image_size"]), tuple(metadata["mean"]), tuple(metadata["std"]))
        warnings.warn(
            f"{source} records no input format; evaluating it at {DEFAULT_INPUT_FORMAT.image_size} px with mean "
            f"{DEFAULT_INPUT_FORMAT.mean} and std {DEFAULT_INPUT_FORMAT.std}.",
            stacklevel=2,
        )
        return DEFAULT_INPUT_FORMAT

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_INPUT_FORMAT = InputFormat(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def atomic_save(payload: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, flush it to disk, then rename over it.

    A process killed at any moment leaves either the previous file or the new one at
    ``path``, never a truncated one; a killed write leaves only its ``.tmp`` file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def export_backbone(path: str | Path, backbone: Backbone, name: str, kwargs: dict | None = None, **metadata) -> None:
    """Write ``backbone``'s weights with the name and arguments that rebuild it."""
    payload = {
        "format": EXPORT_FORMAT,
        "backbone": name,
        "backbone_kwargs": dict(kwargs or {}),
        "feature_dim": backbone.feature_dim,
        "state_dict": {key: value.detach().cpu() for key, value in backbone.state_dict().items()},
        "metadata": metadata,
    }
    atomic_save(payload, path)


def load_backbone(
    path: str | Path, backbone: str | None = None, backbone_kwargs: dict | None = None
) -> tuple[Backbone, dict]:
    """Rebuild the backbone stored in ``path``; return it with the file's metadata."""
    payload = read_checkpoint(path)
    name, kwargs, state_dict, metadata = _unpack(payload, path)
    if name is None:
        if backbone is None:
            raise ConfigurationError(
                f"{path} holds bare weights without an architecture: name it (backbone='resnet18', ...)."
            )
        name, kwargs = backbone, backbone_kwargs or {}
    model = build_backbone(name, **kwargs)
    state_dict = {_strip_wrappers(key): value for key, value in state_dict.items()}
    expected, found = set(model.state_dict()), set(state_dict)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise ConfigurationError(
            f"{path} does not fit backbone {name!r} {kwargs}: "
            f"missing keys {preview_keys(missing)}, unexpected keys {preview_keys(unexpected)}."
        )
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ConfigurationError(f"{path} does not fit backbone {name!r} {kwargs}: {error}") from None
    return model, {"backbone": name, "backbone_kwargs": kwargs, **metadata}


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file safely, turning every way it can be unreadable into one message."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ConfigurationError(
            f"{path} is not a readable checkpoint: it is truncated, or not a file written by torch.save "
            "(files of torch < 1.6 must be re-saved first)."
        )
    _refuse_inflating_archive(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigurationError(
            f"refusing to load {path}: it holds pickled objects other than tensors and plain containers, "
            "and loading them could run code. Export the weights as a plain state dict from a trusted copy."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ConfigurationError(
            f"{path} is not a readable checkpoint (corrupt archive): {str(error).splitlines()[0]}"
        ) from None
    if not isinstance(payload, dict):
        raise ConfigurationError(f"{path} is not a checkpoint: it holds a {type(payload).__name__}, not a dict.")
    return payload


def _refuse_inflating_archive(path: Path) -> None:
    """Refuse, before anything is allocated, an archive that would unpack to more than its own size.

    ``torch.save`` stores every record uncompressed, so the data a checkpoint declares
    never exceeds the file. A crafted file can deflate gigabytes of tensor data into a
    few megabytes; ``torch.load`` would inflate all of it into memory first.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ConfigurationError(f"{path} is not a readable checkpoint (corrupt archive): {error}") from None
    compressed = [record.filename for record in records if record.compress_type != zipfile.ZIP_STORED]
    declared = sum(record.file_size for record in records)
    if compressed or declared > path.stat().st_size:
        raise ConfigurationError(
            f"refusing to load {path}: it declares {declared / 2**20:.1f} MiB of data in a "
            f"{path.stat().st_size / 2**20:.1f} MiB file ({len(compressed)} compressed records; torch.save writes "
            "none). It was not written by torch.save; re-save the weights from a trusted copy."
        )


def _unpack(payload: dict, path) -> tuple[str | None, dict, dict, dict]:
    if payload.get("format") == EXPORT_FORMAT:
        return payload["backbone"], payload["backbone_kwargs"], payload["state_dict"], payload.get("metadata", {})
    if "state_dict" in payload and "hyper_parameters" in payload:
        hparams = payload["hyper_parameters"]
        if "backbone" not in hparams:
            raise ConfigurationError(f"{path} is a Lightning checkpoint but not of a selfsup method (no 'backbone').")
        state_dict = {
            key.removeprefix("backbone."): value
            for key, value in payload["state_dict"].items()
            if key.startswith("backbone.")
        }
        metadata = {"global_step": payload.get("global_step"), "epoch": payload.get("epoch")}
        metadata |= payload.get(INPUT_FORMAT_KEY, {})
        return hparams["backbone"], dict(hparams.get("backbone_kwargs") or {}), state_dict, metadata
    if payload and all(isinstance(value, torch.Tensor) for value in payload.values()):
        return None, {}, payload, {}
    raise ConfigurationError(f"{path} is neither a selfsup export, a Lightning checkpoint nor a state dict.")


def _strip_wrappers(key: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key.removeprefix(prefix), True
    return key


def preview_keys(keys: list[str], limit: int = 8) -> str:
    """``[a, b, ... (N in all)]`` for an error message; ``none`` when empty."""
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... ({len(keys)} in all)' if len(keys) > limit else ''}]"
