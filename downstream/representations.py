"""The rows of the matrix: the checkpoints, and the baselines they are judged against.

* a checkpoint: its backbone, seeing every dataset at the input size and normalisation
  it was pretrained with;
* ``random init (<arch>, <size>px)``: for each architecture and input size among the
  checkpoints, a randomly initialised network (``torch.manual_seed(seed)``, then
  :func:`build_backbone`), a new one for every seed: what the architecture alone gives,
  the baseline of the pretext-task papers (Doersch et al. 2015; Gidaris et al. 2018);
* ``raw pixels``: the evaluation-transformed images, flattened, at the smallest input
  size among the checkpoints and with that checkpoint's mean and std. Only the protocols
  that read features apply (:data:`FEATURE_PROTOCOLS`; ``linear`` when it caches them).

A dictionary file of :mod:`selfsup.classical.dictionary` (``selfsup dictionary``) is a
checkpoint too: its pooled sparse codes are its features, so it takes the feature
protocols only, like raw pixels; its random baseline is random unit-norm atoms coded and
pooled alike.
"""

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from pytorch_lightning.utilities import rank_zero_only
from torch import nn

from downstream.checkpoint_entry import CheckpointEntry
from selfsup.backbones import build_backbone
from selfsup.checkpoints import InputFormat, backbone_from, read_checkpoint
from selfsup.classical.dictionary import SparseCodingEncoder, dictionary_from, is_dictionary, random_encoder
from selfsup.errors import ConfigurationError

FEATURE_PROTOCOLS = ("knn", "logistic", "logme", "transferability")


@dataclass
class Representation:
    """One row: its name, its input format, and the network that turns images into features.

    ``network(seed)`` returns the network for a seed (the same one for a checkpoint);
    ``source`` is what the row's values depend on besides the protocol, for the
    fingerprints of :mod:`downstream.cells`; ``architecture`` is ``(name, kwargs)`` of a
    backbone (``None`` for raw pixels and dictionaries: nothing to train or probe per layer);
    ``random_twin()`` is the row's randomly initialised baseline (``None``: it has none), and a
    baseline's ``detailed_name`` the name it takes when another baseline would share its name.
    """

    name: str
    input_format: InputFormat
    network: Callable[[int], nn.Module]
    stages: int
    source: dict
    architecture: tuple[str, dict] | None = None
    random_twin: Callable[[], "Representation"] | None = None
    detailed_name: str | None = None


class Pixels(nn.Module):
    """The image itself as a one-stage network: its flattened pixels, as a 1x1 map for the extractor."""

    def __init__(self, image_size: int, channels: int = 3) -> None:
        super().__init__()
        self.feature_dim = channels * image_size * image_size
        self.stage_dims = (self.feature_dim,)

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [images.flatten(1)[:, :, None, None]]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)


#: The names of the baseline rows; no checkpoint may take one (its values would mix with the baseline's).
BASELINE_NAMES = ("raw pixels", "random init (")


def checkpoint_rows(checkpoints: dict[str, str | dict]) -> list[Representation]:
    """A row per checkpoint entry (:class:`~downstream.checkpoint_entry.CheckpointEntry`: a path, or a mapping).

    The fingerprint's source is the file (path, size, mtime) and what the entry states. Every
    way a file can fail to load is one :class:`ConfigurationError` naming its key,
    ``checkpoints.<name>``. What was taken from a foreign file, and an input format that is
    not the file's own, are announced on stderr.
    """
    rows = []
    for name, value in checkpoints.items():
        entry, payload = _read(name, value)
        key, stat = f"checkpoints.{name}", Path(entry.path).stat()
        file = {"checkpoint": str(Path(entry.path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if is_dictionary(payload):
            rows.append(_dictionary_row(name, entry, payload, file))
            continue
        try:
            backbone, metadata = backbone_from(payload, entry.path, entry.backbone, entry.backbone_kwargs, entry.prefix)
        except ConfigurationError as error:
            raise ConfigurationError(f"{key}: {error}") from None
        input_format, note = InputFormat.resolve(metadata, entry.stated_format(), metadata["backbone"], key)
        for line in filter(None, (metadata.get("source") and f"{key}: {metadata['source']}", note)):
            if rank_zero_only.rank == 0:
                print(line, file=sys.stderr)
        architecture, stages = (metadata["backbone"], metadata["backbone_kwargs"]), len(backbone.stage_dims)
        rows.append(
            Representation(
                name,
                input_format,
                network=functools.partial(_same_network, backbone),
                stages=stages,
                source=file | {"prefix": entry.prefix, **input_format.as_dict()},
                architecture=architecture,
                random_twin=functools.partial(_random_backbone_row, architecture, input_format, stages),
            )
        )
    return rows


def _read(name: str, value) -> tuple[CheckpointEntry, dict]:
    if not isinstance(name, str) or not name.strip() or name.startswith(BASELINE_NAMES):
        raise ConfigurationError(
            f"checkpoints: {name!r} is not a name a checkpoint may take: it must be non-empty and not name a "
            "baseline row ('raw pixels', 'random init (...)'); rename the checkpoint."
        )
    key = f"checkpoints.{name}"
    entry = CheckpointEntry.parse(name, value)
    if Path(entry.path).is_dir():
        raise ConfigurationError(
            f"{key}: {entry.path} is a directory, not a checkpoint file; give the backbone.pt of a run directory "
            "(or its checkpoints/last.ckpt)."
        )
    try:
        return entry, read_checkpoint(entry.path)
    except ConfigurationError as error:
        raise ConfigurationError(f"{key}: {error}") from None


def _dictionary_row(name: str, entry: CheckpointEntry, payload: dict, file: dict) -> Representation:
    key = f"checkpoints.{name}"
    given = [field for field in ("backbone", "prefix") if getattr(entry, field) is not None]
    if given:
        raise ConfigurationError(
            f"{key}: {entry.path} is a sparse-coding dictionary, which has no {' or '.join(given)}; remove "
            f"{', '.join(given)} from its entry."
        )
    try:
        encoder, recorded = dictionary_from(payload, entry.path)
    except ConfigurationError as error:
        raise ConfigurationError(f"{key}: {error}") from None
    input_format, _ = InputFormat.resolve(recorded, entry.stated_format(), "dictionary", key)
    return Representation(
        name,
        input_format,
        network=functools.partial(_same_network, encoder),
        stages=1,
        source=file | input_format.as_dict(),
        random_twin=functools.partial(_random_dictionary_row, encoder, input_format),
    )


def random_init_rows(checkpoints: list[Representation]) -> list[Representation]:
    """The random baselines of ``checkpoints``: one per architecture (or dictionary shape) and input size.

    Two baselines of one name but other definitions (a ``small_conv`` of width 32 and one of
    width 8, a teacher and its student; dictionaries of another stride) take their detailed names.
    """
    twins = [checkpoint.random_twin() for checkpoint in checkpoints if checkpoint.random_twin is not None]
    definitions: dict[str, set[str]] = {}
    for twin in twins:
        definitions.setdefault(twin.name, set()).add(repr(twin.source))
    rows: dict[str, Representation] = {}
    for twin in twins:
        if len(definitions[twin.name]) > 1:
            twin.name = twin.detailed_name
        rows.setdefault(twin.name, twin)
    return list(rows.values())


def _random_backbone_row(architecture: tuple[str, dict], input_format: InputFormat, stages: int) -> Representation:
    name, kwargs = architecture
    arguments = "".join(f" {key}={value}" for key, value in sorted(kwargs.items()))
    return Representation(
        f"random init ({name}, {input_format.image_size}px)",
        input_format,
        network=functools.partial(_random_network, name, kwargs),
        stages=stages,
        source={"random_init": name, "backbone_kwargs": kwargs, **input_format.as_dict()},
        architecture=architecture,
        detailed_name=f"random init ({name}{arguments}, {input_format.image_size}px)",
    )


def _random_dictionary_row(encoder: SparseCodingEncoder, input_format: InputFormat) -> Representation:
    shape = f"{encoder.n_atoms} atoms of {encoder.patch_size}x{encoder.patch_size}"
    coding = f"stride {encoder.stride}, sparsity {encoder.sparsity:g}, pool {encoder.pool_grid}"
    return Representation(
        f"random init (dictionary, {shape}, {input_format.image_size}px)",
        input_format,
        network=functools.partial(random_encoder, encoder),
        stages=1,
        source={
            "random_init": "dictionary",
            "n_atoms": encoder.n_atoms,
            **encoder.settings(),
            **input_format.as_dict(),
        },
        detailed_name=f"random init (dictionary, {shape}, {coding}, {input_format.image_size}px)",
    )


def raw_pixels_row(checkpoints: list[Representation]) -> Representation:
    """Raw pixels at the smallest input size among ``checkpoints``, with that checkpoint's normalisation."""
    input_format = min(checkpoints, key=lambda checkpoint: checkpoint.input_format.image_size).input_format
    return Representation(
        "raw pixels",
        input_format,
        network=functools.partial(_same_network, Pixels(input_format.image_size)),
        stages=1,
        source={"raw_pixels": input_format.as_dict()},
    )


def _same_network(network: nn.Module, seed: int) -> nn.Module:
    return network


def _random_network(architecture: str, kwargs: dict, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_backbone(architecture, **kwargs)
