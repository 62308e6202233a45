"""Other projects' checkpoints: find the one set of tensors in a file that is the backbone.

A foreign file nests its backbone somewhere: ``state_dict.module.encoder_q.`` (the MoCo
v1/v2 release), ``state_dict.module.base_encoder.`` (MoCo v3), ``teacher.backbone.``
(DINO), ``state_dict.backbone.`` (solo-learn, lightly, mmselfsup, mmpretrain),
``classy_state_dict.base_model.model.trunk._feature_blocks.`` (VISSL), or nowhere
(torchvision and timm state dicts). Rather than a list of formats that is never
complete, :func:`interpret` flattens the file's nested dicts into dotted names and
tries every prefix that occurs in them: a prefix is a candidate when the tensors under
it are exactly the architecture's (every name, every shape), apart from a classifier,
projector or predictor head. Index-named keys (lightly's
``nn.Sequential(*list(resnet.children())[:-1])``: ``0.weight``, ``4.0.conv1.weight``)
are read by the architecture's children in order, and Vision Transformers in timm's
naming (timm, DINO, MoCo v3, MAE: ``blocks.N.attn.qkv``, ``cls_token``) by torchvision's
(:func:`timm_vit_names`).

When several prefixes fit (a MoCo file holds a query and a key encoder of the same
shape), the one under the component named first in :data:`PREFERRED` is taken
(``encoder_q`` over ``encoder_k``, ``teacher`` over ``student``, ...); when that does not
settle it, or none fits, the file is refused with the candidates and, for the closest
ones, their missing and unexpected names. A ``prefix`` given by the user is the only
candidate tried. Prefixes are removed by slicing, never by ``str.lstrip``.
"""

import re
from collections import Counter
from dataclasses import dataclass

import torch
from torch import nn

from selfsup.errors import ConfigurationError

#: The components whose weights are the backbone when several candidates fit, in order of preference.
PREFERRED = ("encoder_q", "base_encoder", "teacher", "online_network", "backbone", "encoder", "trunk", "model")

#: Heads a candidate may carry beside the backbone's tensors; they are dropped.
HEADS = ("fc", "head", "heads", "classifier", "projector", "projection_head", "predictor", "prediction_head")

#: What the common prefixes are, for the report (first match wins).
CONVENTIONS = (
    (r"", "a plain state dict (torchvision / timm naming)"),
    (r"(module\.|_orig_mod\.)+", "a wrapped state dict (DataParallel / DDP / torch.compile)"),
    (r"(state_dict\.)?module\.encoder_q\.", "the query encoder of a MoCo v1/v2 checkpoint"),
    (r"(state_dict\.)?(module\.)?base_encoder\.", "the base encoder of a MoCo v3 checkpoint"),
    (r"(state_dict\.)?(module\.)?momentum_encoder\.", "the momentum encoder of a MoCo v3 checkpoint"),
    (r"teacher\.(module\.)?backbone\.", "the teacher of a DINO checkpoint"),
    (r"student\.(module\.)?backbone\.", "the student of a DINO checkpoint"),
    (r"(state_dict\.)?(model\.)?backbone\.", "the backbone of a Lightning or mm checkpoint"),
    (r"classy_state_dict\.base_model\.model\.trunk\.(_feature_blocks\.)?", "the trunk of a VISSL checkpoint"),
    (r"(state_dict\.)?(module\.)?encoder\.", "the encoder of a SimCLR-style checkpoint"),
)  # fmt: skip


@dataclass(frozen=True)
class Interpretation:
    """The backbone's tensors found in a file, where they were, and what was left behind."""

    state_dict: dict[str, torch.Tensor]
    prefix: str
    convention: str
    dropped: dict[str, int]

    def report(self) -> str:
        """``took N tensors of <convention> ('<prefix>'); dropped <group>.* (n), ...`` for the user."""
        dropped = ", ".join(f"{group} ({count})" for group, count in self.dropped.items()) or "nothing"
        return f"took {len(self.state_dict)} tensors of {self.convention} ({self.prefix!r}); dropped {dropped}"


@dataclass(frozen=True)
class _Candidate:
    prefix: str
    state_dict: dict[str, torch.Tensor]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    reshaped: tuple[str, ...]

    @property
    def matched(self) -> int:
        """How many of the architecture's tensors this candidate has, with their shapes."""
        return len(self.state_dict) - len(self.reshaped)

    @property
    def fits(self) -> bool:
        return not (self.missing or self.unexpected or self.reshaped)

    def mismatch(self) -> str:
        parts = [f"missing keys {_preview(self.missing)}" if self.missing else ""]
        parts += [f"unexpected keys {_preview(self.unexpected)}" if self.unexpected else ""]
        parts += [f"other shapes {_preview(self.reshaped)}" if self.reshaped else ""]
        where = "the whole file" if not self.prefix else f"under {self.prefix!r}"
        return f"{where}: " + ", ".join(part for part in parts if part)


def flatten(payload: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in the nested dicts of ``payload`` under its dotted name (lists and other values skipped)."""
    tensors = {}
    for key, value in payload.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            tensors[name] = value
        elif isinstance(value, dict):
            tensors |= flatten(value, f"{name}.")
    return tensors


def interpret(payload: dict, model: nn.Module, prefix: str | None = None) -> Interpretation:
    """The tensors of ``payload`` that load into ``model``, or a :class:`ConfigurationError` saying why none do."""
    tensors = flatten(payload)
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    children = [name for name, _ in model.named_children()]
    prefixes = [prefix] if prefix is not None else _prefixes(tensors)
    candidates = [_candidate(tensors, option, expected, children) for option in prefixes]
    fitting = [candidate for candidate in candidates if candidate.fits]
    if prefix is not None and not fitting:
        raise ConfigurationError(f"the tensors under prefix {prefix!r} do not fit: {candidates[0].mismatch()}.")
    if not fitting:
        whole, best = candidates[0], max(candidates, key=lambda candidate: candidate.matched)
        shown = [whole] + ([best] if best.matched > whole.matched else [])
        raise ConfigurationError(
            "no set of tensors in the file fits the architecture: "
            + " | ".join(candidate.mismatch() for candidate in shown)
            + ". Check the architecture and its arguments, or name the prefix to take."
        )
    chosen = _preferred(fitting)
    taken = {name for name in tensors if name.startswith(chosen.prefix) and _under(name, chosen.prefix, expected)}
    return Interpretation(
        state_dict=chosen.state_dict,
        prefix=chosen.prefix,
        convention=_convention(chosen.prefix),
        dropped=_groups([name for name in tensors if name not in taken], chosen.prefix),
    )


def _prefixes(tensors: dict[str, torch.Tensor]) -> list[str]:
    """``""`` and every dotted prefix of every name (``a.``, ``a.b.``, ...), each once, in order of appearance."""
    found = {"": None}
    for name in tensors:
        parts = name.split(".")
        for end in range(1, len(parts)):
            found[".".join(parts[:end]) + "."] = None
    return list(found)


def _candidate(tensors: dict, prefix: str, expected: dict, children: list[str]) -> _Candidate:
    under = {name[len(prefix) :]: value for name, value in tensors.items() if name.startswith(prefix)}
    if under and all(name.split(".", 1)[0].isdigit() for name in under):
        under = _by_child_names(under, children)
    if "cls_token" in under and "class_token" in expected:
        under = timm_vit_names(under)
    state_dict = {name: value for name, value in under.items() if name in expected}
    extra = sorted(name for name in under if name not in expected and name.split(".", 1)[0] not in HEADS)
    return _Candidate(
        prefix,
        state_dict,
        missing=tuple(sorted(set(expected) - set(state_dict))),
        unexpected=tuple(extra),
        reshaped=tuple(sorted(name for name, value in state_dict.items() if tuple(value.shape) != expected[name])),
    )


def _by_child_names(under: dict, children: list[str]) -> dict:
    """``4.0.conv1.weight`` -> ``layer1.0.conv1.weight``: index-named keys read by the model's children in order."""
    renamed = {}
    for name, value in under.items():
        index, _, rest = name.partition(".")
        child = children[int(index)] if int(index) < len(children) else index
        renamed[f"{child}.{rest}"] = value
    return renamed


#: timm's Vision Transformer names -> torchvision's (``VisionTransformer``), as regular expressions.
_TIMM_VIT = (
    (r"^cls_token$", "class_token"),
    (r"^pos_embed$", "encoder.pos_embedding"),
    (r"^patch_embed\.proj\.", "conv_proj."),
    (r"^norm\.", "encoder.ln."),
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.layers.encoder_layer_\1.ln_1."),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.layers.encoder_layer_\1.ln_2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.weight$", r"encoder.layers.encoder_layer_\1.self_attention.in_proj_weight"),
    (r"^blocks\.(\d+)\.attn\.qkv\.bias$", r"encoder.layers.encoder_layer_\1.self_attention.in_proj_bias"),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.encoder_layer_\1.self_attention.out_proj."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"encoder.layers.encoder_layer_\1.mlp.0."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"encoder.layers.encoder_layer_\1.mlp.3."),
)


def timm_vit_names(under: dict) -> dict:
    """A timm-named ViT state dict under torchvision's names (heads and unknown names kept as they are)."""
    renamed = {}
    for name, value in under.items():
        for pattern, replacement in _TIMM_VIT:
            name, count = re.subn(pattern, replacement, name)
            if count:
                break
        renamed[name] = value
    return renamed


def _under(name: str, prefix: str, expected: dict) -> bool:
    rest = name[len(prefix) :]
    return rest.split(".", 1)[0] not in HEADS or rest in expected


def _preferred(fitting: list[_Candidate]) -> _Candidate:
    if len(fitting) == 1:
        return fitting[0]
    for component in PREFERRED:
        named = [candidate for candidate in fitting if component in candidate.prefix.split(".")]
        if len(named) == 1:
            return named[0]
        if named:
            break
    raise ConfigurationError(
        f"{len(fitting)} sets of tensors in the file fit the architecture: "
        + ", ".join(repr(candidate.prefix) for candidate in fitting)
        + "; name the one to take as the checkpoint's prefix."
    )


def _convention(prefix: str) -> str:
    for pattern, description in CONVENTIONS:
        if re.fullmatch(pattern, prefix):
            return description
    return f"the weights under {prefix!r}"


def _groups(names: list[str], prefix: str) -> dict[str, int]:
    """Dropped names counted by group: the first component in which each parts from ``prefix`` (``encoder_k.*``)."""
    groups = Counter()
    taken = prefix.split(".")[:-1]
    for name in names:
        parts = name.split(".")
        shared = next((i for i, (a, b) in enumerate(zip(parts, taken)) if a != b), min(len(parts) - 1, len(taken)))
        groups[".".join(parts[: shared + 1]) + (".*" if shared + 1 < len(parts) else "")] += 1
    return dict(sorted(groups.items()))


def _preview(names: tuple[str, ...], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{f', ... ({len(names)} in all)' if len(names) > limit else ''}]"
