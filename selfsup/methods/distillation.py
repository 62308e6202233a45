"""Knowledge distillation: a small student learns a frozen, pretrained teacher's representation.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", arXiv:1503.02531 (2015),
for the idea; Fang et al., "SEED: Self-supervised Distillation for Visual Representation", ICLR
2021, for distilling a self-supervised representation without labels. The teacher is any
backbone this project can load (``model.init_args.teacher``: a ``backbone.pt``, a checkpoint of
a pretraining run, another project's file with ``teacher_backbone``); the student is the shell's
backbone, exported as ``backbone.pt`` like every method's. For a minibatch of N unlabelled images:

    x = the first view of each image                   one view is enough: the teacher is fixed
    t = f_T(x in the teacher's input format)           frozen: no gradient, eval-mode batch norm
    s = h(f_S(x))                                      the student, projected to the teacher's width
    loss = feature_regression(s, t)                    mean ||s/|s| - t/|t|||^2
       or  seed_loss(s, t, queue)                      SEED eq. 4: H(p^T, p^S) over [t_i; queue]
    optimiser step on f_S and h only
    enqueue t/|t| from every rank (SEED)               the queue is a persistent buffer

The projector h is SEED's student head, an MLP (Linear, ReLU, Linear; hidden width the
student's feature dimension, no batch norm; ``projection: linear`` for one layer): the head
absorbs what the small backbone cannot match exactly, so the features the student keeps are
not forced to be a linear image of the teacher's. The losses are in :mod:`selfsup.losses.distillation`.

The teacher is a child module with ``requires_grad`` off, so the shell's optimiser groups
(which take trainable parameters only) and their weight decay never hold it; it stays in eval
mode through ``model.train()`` and runs under ``torch.no_grad()``. It is not in the state dict:
checkpoints stay the student's size, and a resume reloads the teacher from its file, which the
checkpoint pins by a SHA-256 of the teacher's tensors (another teacher there is refused).
Each view reaches the teacher in the teacher's own input format (:func:`reformat`): the
``image_size``, ``mean`` and ``std`` its file records, the data's where it records none.
"""

import hashlib
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.checkpoints import InputFormat, load_backbone
from selfsup.components.heads import ProjectionMLP
from selfsup.components.key_queue import KeyQueue
from selfsup.distributed import gather
from selfsup.errors import ConfigurationError, is_finite, is_integer, require, require_sizes
from selfsup.losses.distillation import feature_regression, seed_loss
from selfsup.losses.nt_xent import unit_rows
from selfsup.methods.base import PretrainMethod

#: The entry a checkpoint holds about the teacher it was trained with (its path and SHA-256).
TEACHER_KEY = "distillation_teacher"
TEACHER = "model.init_args.teacher"


class Distillation(PretrainMethod):
    views_needed = 1

    def __init__(
        self,
        *args,
        teacher: str,
        teacher_backbone: str | None = None,
        teacher_backbone_kwargs: dict | None = None,
        teacher_prefix: str | None = None,
        loss: Literal["feature_regression", "seed"] = "feature_regression",
        projection: Literal["linear", "mlp"] = "mlp",
        projection_hidden_dim: int | None = None,
        queue_size: int = 65536,
        student_temperature: float = 0.2,
        teacher_temperature: float = 1e-4,
        **kwargs,
    ) -> None:
        """The frozen teacher, the student's projector and, for SEED, the queue.

        Args:
            teacher: the teacher's file: a ``backbone.pt``, a checkpoint of a pretraining run, or another
                project's checkpoint (then name its architecture in ``teacher_backbone``).
            teacher_backbone: the teacher's architecture, for a file that does not name it.
            teacher_backbone_kwargs: that architecture's arguments.
            teacher_prefix: the key prefix of the teacher's tensors in another project's file.
            loss: ``feature_regression`` (2 - 2 cos to the teacher's feature) or ``seed`` (SEED's relational loss).
            projection: the student's head to the teacher's width: ``mlp`` (SEED's) or ``linear``.
            projection_hidden_dim: the MLP's hidden width; the student's feature dimension when unset (SEED's).
            queue_size: SEED's K, teacher embeddings kept (65536); a multiple of the global batch.
            student_temperature: SEED's tau_S (0.2).
            teacher_temperature: SEED's tau_T (1e-4).
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        require(loss in ("feature_regression", "seed"), key + "loss", loss, "feature_regression or seed")
        require(projection in ("linear", "mlp"), key + "projection", projection, "linear or mlp")
        if projection_hidden_dim is not None:
            require_sizes(key, projection_hidden_dim=projection_hidden_dim)
        require(is_integer(queue_size) and queue_size >= 1, key + "queue_size", queue_size, "an integer >= 1 (65536)")
        for name, value in (("student_temperature", student_temperature), ("teacher_temperature", teacher_temperature)):
            require(is_finite(value) and value > 0, key + name, value, "a finite number > 0")

        self.teacher, self.teacher_metadata = _load_teacher(
            teacher, teacher_backbone, teacher_backbone_kwargs, teacher_prefix
        )
        self.teacher.requires_grad_(False).eval()
        self.teacher_sha256 = _fingerprint(self.teacher)
        self.register_state_dict_post_hook(_without_teacher)
        self.register_load_state_dict_pre_hook(_with_own_teacher)
        #: (the data's, the teacher's) input format, set when fitting starts; None: the images pass unchanged.
        self.input_formats: tuple[InputFormat, InputFormat] | None = None

        student_dim, teacher_dim = self.backbone.feature_dim, self.teacher.feature_dim
        if projection == "linear":
            self.projector = nn.Linear(student_dim, teacher_dim)
        else:
            self.projector = ProjectionMLP(
                student_dim, projection_hidden_dim or student_dim, teacher_dim, batch_norm=False
            )
        self.queue = KeyQueue(queue_size, teacher_dim) if loss == "seed" else None

    def train(self, mode: bool = True) -> "Distillation":
        """Train or evaluate the student; the teacher stays in eval mode (its batch norm keeps its statistics)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage != "fit":
            return
        self.input_formats = _input_formats(InputFormat.of(self.trainer.datamodule), self.teacher_metadata)
        keys_per_step = self._per_device_batch_size() * self.trainer.world_size
        if self.queue is not None and self.queue.size % keys_per_step:
            raise ConfigurationError(
                f"model.init_args.queue_size={self.queue.size} must be a multiple of the teacher embeddings enqueued "
                f"per step, {keys_per_step} (data.batch_size x devices); e.g. "
                f"{keys_per_step * max(1, self.queue.size // keys_per_step)}."
            )

    def training_step(self, batch, batch_idx):
        views, labels = batch
        images = views[0]
        teacher = self.teacher_embeddings(images)
        features = self.backbone(images)
        loss = self.distillation_loss(self.projector(features), teacher)
        if self.queue is not None:
            self.queue.enqueue(gather(unit_rows(teacher)))
        self.log("train/distillation_loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        return loss + self.online_probe_step(features, labels)

    @torch.no_grad()
    def teacher_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """t = f_T(images), the images first put in the teacher's input format."""
        if self.input_formats is not None:
            images = reformat(images, *self.input_formats)
        return self.teacher(images)

    def distillation_loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The configured loss between the projected student and the teacher (SEED: against the queue as it is)."""
        hparams = self.hparams
        if hparams.loss == "feature_regression":
            return feature_regression(student, teacher)
        return seed_loss(
            student, teacher, self.queue.keys.clone(), hparams.student_temperature, hparams.teacher_temperature
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[TEACHER_KEY] = {"path": str(self.hparams.teacher), "sha256": self.teacher_sha256}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse another architecture (the shell) and another teacher than the run was trained with."""
        super().on_load_checkpoint(checkpoint)
        recorded = checkpoint.get(TEACHER_KEY) or {}
        if recorded.get("sha256") != self.teacher_sha256:
            raise ConfigurationError(
                f"{TEACHER}={self.hparams.teacher!r} holds other weights (sha256 {self.teacher_sha256[:12]}) than the "
                f"teacher this checkpoint was trained with ({recorded.get('path')!r}, sha256 "
                f"{str(recorded.get('sha256'))[:12]}); point {TEACHER} at that file to resume."
            )


def reformat(images: torch.Tensor, source: InputFormat, target: InputFormat) -> torch.Tensor:
    """``images``, normalised with ``source``'s mean and std, as ``target`` expects them.

    Un-normalised with ``source``'s mean and std, resized to ``target.image_size`` (bilinear,
    antialiased as the datamodules' resizing is) when their side differs, re-normalised with
    ``target``'s. Their side is their own, not ``source.image_size`` (a view group may crop at
    another size). Images already in ``target``'s format come back unchanged, as the same tensor.
    """
    size = (target.image_size, target.image_size)
    if (source.mean, source.std) == (target.mean, target.std) and tuple(images.shape[-2:]) == size:
        return images

    def channels(values: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)

    pixels = images * channels(source.std) + channels(source.mean)
    if tuple(pixels.shape[-2:]) != size:
        pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=True)
    return (pixels - channels(target.mean)) / channels(target.std)


def _load_teacher(path, backbone: str | None, kwargs: dict | None, prefix: str | None) -> tuple[nn.Module, dict]:
    """The teacher backbone and its file's metadata; every way it cannot be loaded is one line naming the key."""
    fix = (
        f"Set {TEACHER} to a backbone.pt or a checkpoint of a pretraining run (another project's file: "
        "with model.init_args.teacher_backbone naming its architecture)."
    )
    require(isinstance(path, (str, Path)) and str(path) != "", TEACHER, path, "the path of the teacher's file")
    if Path(path).is_dir():
        raise ConfigurationError(f"{TEACHER}={str(path)!r} is a directory, not a checkpoint file. {fix}")
    try:
        return load_backbone(path, backbone, kwargs, prefix)
    except (ConfigurationError, OSError) as error:
        reason = " ".join(str(error).split()).rstrip(".")
        raise ConfigurationError(f"{TEACHER}={str(path)!r} cannot be loaded: {reason}. {fix}") from None


def _input_formats(data: InputFormat | None, metadata: dict) -> tuple[InputFormat, InputFormat] | None:
    """(the data's, the teacher's) format; what the teacher's file does not record is the data's."""
    recorded = {key: metadata[key] for key in ("image_size", "mean", "std") if metadata.get(key) is not None}
    if data is None:
        if recorded:
            raise ConfigurationError(
                f"the teacher records its input format {recorded}, but the datamodule states no image_size, mean and "
                "std to convert from; use a datamodule of selfsup.data."
            )
        return None
    teacher = {**data.as_dict(), **recorded}
    return data, InputFormat(
        int(teacher["image_size"]), tuple(map(float, teacher["mean"])), tuple(map(float, teacher["std"]))
    )


def _fingerprint(module: nn.Module) -> str:
    """SHA-256 of ``module``'s tensors: their names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _without_teacher(module: Distillation, state_dict: dict, prefix: str, local_metadata) -> None:
    """State-dict hook: the teacher is loaded from its file, not saved in checkpoints."""
    for name in [name for name in state_dict if name.startswith(prefix + "teacher.")]:
        del state_dict[name]


def _with_own_teacher(module: Distillation, state_dict: dict, prefix: str, *args) -> None:
    """Load-state-dict hook: the teacher keeps its own tensors (a checkpoint holds none)."""
    state_dict.update({prefix + "teacher." + name: value for name, value in module.teacher.state_dict().items()})
