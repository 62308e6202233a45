"""The checkpoint format: what this project writes, and every file it reads weights from.

Writer and reader of each entry live here: the ``backbone.pt`` export, the entries this
project adds to Lightning checkpoints (:data:`INPUT_FORMAT_KEY`, :data:`RANDOM_STATES_KEY`)
and :class:`InputFormat`, the record of how a backbone saw its images.

Three kinds of file load into a backbone:

* an export written by :func:`export_backbone` (``backbone.pt`` in a run directory),
  which names its architecture;
* a Lightning checkpoint of any method of this project (``last.ckpt``), whose
  hyper-parameters name the architecture and whose ``backbone.*`` weights are used;
* any other file (torchvision, timm, MoCo, DINO, solo-learn, lightly, VISSL, ...), for
  which the caller names the architecture and :mod:`selfsup.foreign` finds its tensors.

Files are read with ``weights_only=True``: a checkpoint that carries pickled code is
refused. Any mismatch between file and architecture is an error listing the missing
and the unexpected keys; nothing is loaded half-way.
"""

import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from selfsup.backbones import Backbone, backbone_names, build_backbone
from selfsup.errors import ConfigurationError, DiskFull, disk_full_in
from selfsup.foreign import interpret
from selfsup.untrusted_archives import refuse_inflating_archive, refuse_over_limit

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
    def resolve(cls, recorded: dict, stated: dict, backbone: str, source: str) -> tuple["InputFormat", str | None]:
        """The format to evaluate a file at, and a note to announce when it was not the file's own.

        ``recorded``: what the file records (``image_size``, ``mean``, ``std``; any may be
        absent). ``stated``: what the user's entry states. A value both give must agree;
        one neither gives comes from :data:`FAMILY_INPUT_FORMATS` of the architecture,
        and the note says so.
        """
        values, defaulted = {}, []
        family = family_input_format(backbone)
        for key in ("image_size", "mean", "std"):
            own, given = recorded.get(key), stated.get(key)
            if own is not None and given is not None and _as_format_value(own) != _as_format_value(given):
                raise ConfigurationError(
                    f"{source} records {key} {_as_format_value(own)} but its entry states {_as_format_value(given)}; "
                    f"remove {key} from the entry (or fix it)."
                )
            chosen = own if own is not None else given
            if chosen is None:
                chosen, defaulted = getattr(family, key), [*defaulted, key]
            values[key] = _as_format_value(chosen)
        input_format = cls(**values)
        if not defaulted:
            return input_format, None
        note = (
            f"{source} records no {', '.join(defaulted)}: evaluating it at the {backbone} default "
            f"({', '.join(f'{key} {values[key]}' for key in defaulted)}); state them in its entry to change this."
        )
        return input_format, note

    def as_dict(self) -> dict:
        return asdict(self)


def _as_format_value(value):
    return int(value) if isinstance(value, (int, float)) else tuple(float(channel) for channel in value)


#: The input format of an architecture family, for a file that records none: (name prefix, format).
IMAGENET_INPUT_FORMAT = InputFormat(224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
DEFAULT_INPUT_FORMAT = InputFormat(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
FAMILY_INPUT_FORMATS = (("resnet", IMAGENET_INPUT_FORMAT),)


def family_input_format(backbone: str) -> InputFormat:
    """The documented default of ``backbone``'s family (ImageNet's for ResNets), else :data:`DEFAULT_INPUT_FORMAT`."""
    return next((form for prefix, form in FAMILY_INPUT_FORMATS if backbone.startswith(prefix)), DEFAULT_INPUT_FORMAT)


def atomic_save(payload: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, flush it to disk, then rename over it.

    A process killed at any moment leaves either the previous file or the new one at
    ``path``, never a truncated one; a killed write leaves only its ``.tmp`` file. A
    write that finds the disk full removes its temporary file and raises
    :class:`~selfsup.errors.DiskFull`, the previous file intact.
    """
    _atomic_write(path, lambda stream: torch.save(payload, stream))


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    """``data`` written to ``path`` as :func:`atomic_save` writes a checkpoint."""
    _atomic_write(path, lambda stream: stream.write(data))


def _atomic_write(path: str | Path, write: Callable[[Any], Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if (no_space := disk_full_in(error)) is not None:
            kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
            raise DiskFull(f"no space left to write {path} ({no_space.strerror}); {kept}.") from error
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
    path: str | Path, backbone: str | None = None, backbone_kwargs: dict | None = None, prefix: str | None = None
) -> tuple[Backbone, dict]:
    """Rebuild the backbone stored in ``path``; return it with the file's metadata.

    A file of this project names its architecture. Any other file needs ``backbone``
    (and its ``backbone_kwargs``); its tensors are found by :func:`selfsup.foreign.interpret`
    (under ``prefix`` if given), and ``metadata["source"]`` says what was taken and dropped.
    """
    return backbone_from(read_checkpoint(path), path, backbone, backbone_kwargs, prefix)


def backbone_from(
    payload: dict, path: str | Path, backbone: str | None, backbone_kwargs: dict | None, prefix: str | None
) -> tuple[Backbone, dict]:
    """:func:`load_backbone` of a file already read by :func:`read_checkpoint` (``path`` names it in errors)."""
    own = _own_backbone(payload, path)
    if own is not None and prefix is None:
        name, kwargs, state_dict, metadata = own
        if backbone is not None and (backbone, backbone_kwargs or {}) != (name, kwargs):
            raise ConfigurationError(
                f"{path} holds backbone {name!r} {kwargs}, not the {backbone!r} {backbone_kwargs or {}} its entry "
                "names; remove backbone from the entry (this project's files name their architecture)."
            )
        model = build_backbone(name, **kwargs)
        state_dict = {_strip_wrappers(key): value for key, value in state_dict.items()}
        _load_exactly(model, state_dict, f"{path} does not fit backbone {name!r} {kwargs}")
        return model, {"backbone": name, "backbone_kwargs": kwargs, **metadata}
    if backbone is None:
        raise ConfigurationError(
            f"{path} holds weights without an architecture: name it in the checkpoint's entry, "
            "e.g. {path: ..., backbone: resnet50} (and backbone_kwargs if needed)."
        )
    kwargs = dict(backbone_kwargs or {})
    model = build_backbone(backbone, **kwargs)
    try:
        found = interpret(payload, model, prefix)
    except ConfigurationError as error:
        raise ConfigurationError(f"{path} does not fit backbone {backbone!r} {kwargs}: {error}") from None
    _load_exactly(model, found.state_dict, f"{path} does not fit backbone {backbone!r} {kwargs}")
    return model, {"backbone": backbone, "backbone_kwargs": kwargs, "source": found.report()}


def _load_exactly(model: Backbone, state_dict: dict, what: str) -> None:
    expected, found = set(model.state_dict()), set(state_dict)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        raise ConfigurationError(
            f"{what}: missing keys {preview_keys(missing)}, unexpected keys {preview_keys(unexpected)}."
        )
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ConfigurationError(f"{what}: {error}") from None


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file safely, turning every way it can be unreadable into one message."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"checkpoint not found: {path}")
    if _is_safetensors(path):
        return _read_safetensors(path)
    if not zipfile.is_zipfile(path):
        raise ConfigurationError(
            f"{path} is not a readable checkpoint: it is truncated, or not a file written by torch.save "
            "(files of torch < 1.6 must be re-saved first)."
        )
    refuse_inflating_archive(path)
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


def _is_safetensors(path: Path) -> bool:
    """A safetensors file: an 8-byte little-endian header length, then a JSON header."""
    with open(path, "rb") as stream:
        start = stream.read(9)
    return len(start) == 9 and start[8:9] == b"{" and int.from_bytes(start[:8], "little") < path.stat().st_size


def _read_safetensors(path: Path) -> dict:
    """A safetensors file as this project's export (when its metadata says it is one) or as a bare state dict."""
    refuse_over_limit(path, path.stat().st_size)
    try:
        with safe_open(str(path), framework="pt") as stream:
            text = stream.metadata() or {}
            tensors = {key: stream.get_tensor(key) for key in stream.keys()}
        if text.get("format") != json.dumps(EXPORT_FORMAT):  # another tool's file (timm writes {"format": "pt"})
            return tensors
        metadata = {key: json.loads(value) for key, value in text.items()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ConfigurationError(f"{path} is not a readable safetensors file: {error}") from None
    return {
        "format": EXPORT_FORMAT,
        "backbone": metadata.get("backbone"),
        "backbone_kwargs": metadata.get("backbone_kwargs") or {},
        "state_dict": tensors,
        "metadata": metadata.get("metadata") or {},
    }


def _own_backbone(payload: dict, path) -> tuple[str, dict, dict, dict] | None:
    """``(name, kwargs, state_dict, metadata)`` of an export or a Lightning checkpoint of this project, else None."""
    if payload.get("format") == EXPORT_FORMAT:
        return payload["backbone"], payload["backbone_kwargs"], payload["state_dict"], payload.get("metadata", {})
    hparams = payload.get("hyper_parameters")
    named = isinstance(hparams, dict) and isinstance(hparams.get("backbone"), str)
    if isinstance(payload.get("state_dict"), dict) and named and hparams["backbone"] in backbone_names():
        state_dict = {
            key.removeprefix("backbone."): value
            for key, value in payload["state_dict"].items()
            if key.startswith("backbone.")
        }
        metadata = {"global_step": payload.get("global_step"), "epoch": payload.get("epoch")}
        metadata |= payload.get(INPUT_FORMAT_KEY, {})
        return hparams["backbone"], dict(hparams.get("backbone_kwargs") or {}), state_dict, metadata
    return None


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
