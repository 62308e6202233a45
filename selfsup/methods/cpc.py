"""Contrastive Predictive Coding: predict the encodings of the patches below from the rows above.

van den Oord, Li & Vinyals, "Representation Learning with Contrastive Predictive Coding",
arXiv:1807.03748, 2018, §2-3.3, with the image setup of Hénaff et al., "Data-Efficient
Image Recognition with Contrastive Predictive Coding", ICML 2020 (CPC v2); textbook:
Matsui & Kumagai, *Transfer Learning*, ch. 6, §6.2.3. For a minibatch of images:

    cut each image into a G x G grid of P x P patches x_{i,j}, stride s (s = P/2: 50% overlap)
    z_{i,j} = backbone(x_{i,j})                    the pooled feature: the representation kept
    c_{i,j} = g_ar(z)_{i,j}                        masked convolutions: depends on rows <= i only
    zhat_{i+k,j} = W_k c_{i,j}                      one linear predictor per step k = 1..K below
    L_k = -log  exp(z_{i+k,j} . zhat_{i+k,j}) / sum_l exp(z_l . zhat_{i+k,j})        eq. (4)
    loss = mean over k of L_k  (the paper sums; a constant factor)

With ``target_dim`` set, targets and candidates are a linear map ``T z`` of the encodings
(CPC v2's 1x1 convolution to 64 channels) and ``W_k`` predicts in that space; unset, they
are ``z`` itself (CPC v1). The candidates are every patch encoding of the global batch:
the positive, the other positions of the same image and all positions of the other
images, gathered from every rank with gradients (:mod:`selfsup.losses.cpc`). With N
candidates, ``log N - L_k`` is the InfoNCE lower bound on I(z_{i+k,j}; c_{i,j}), logged
as ``train/cpc_mi_k{k}``.

Geometry: the grid spans ``P + (G - 1) s`` pixels; images larger than that place the grid
at a random offset (one per image), a free translation. ``min_step`` > 1 leaves out the
nearest rows, whose patches overlap the context's own at small strides (CPC v2's ``steps_to_ignore``).
Patch augmentation, as in CPC v2 §4.1 and all off by default: a random shift of each patch
by up to ``patch_jitter`` pixels, a horizontal flip with ``patch_flip_prob``, and colour
dropping with ``colour_drop_prob`` (two of the three channels set to 0, the dataset mean).

Batch norm: the project's backbones normalise by batch statistics, which CPC v2 replaced by
layer norm because they let information pass between the patches of one batch (and so from
the rows below). With many images per batch the leak is small; in eval mode it is nil
(``tests/selfsup/methods/test_cpc.py`` checks causality end to end there).

The online probe sees whole images (encoded without gradient), so the backbone's
batch-norm statistics mix patches and whole images, as downstream use needs.
"""

import torch
from torch import nn

from selfsup.components.context_network import ContextNetwork
from selfsup.errors import is_finite, require
from selfsup.losses import CPCLoss
from selfsup.methods.base import PretrainMethod
from selfsup.pretext import crop_tiles


class CPC(PretrainMethod):
    def __init__(
        self,
        *args,
        grid_size: int = 7,
        patch_size: int = 64,
        patch_stride: int | None = None,
        prediction_steps: int = 5,
        min_step: int = 1,
        target_dim: int | None = None,
        context_hidden_dim: int = 256,
        context_layers: int = 5,
        patch_jitter: int = 0,
        patch_flip_prob: float = 0.0,
        colour_drop_prob: float = 0.0,
        **kwargs,
    ) -> None:
        """CPC's grid, context network and predictors.

        Args:
            grid_size: G, patches per row and per column (the papers: 7).
            patch_size: P, the side of a patch in pixels (the papers: 64).
            patch_stride: s, pixels between neighbouring patches; null: P // 2 (50% overlap).
            prediction_steps: K, the farthest row below a context that is predicted; K < G.
            min_step: the nearest row predicted: steps min_step..K (1 in CPC v1).
            target_dim: null: the targets are the encodings z themselves (CPC v1); else a linear map of z
                to this width, the space predictions and candidates are compared in (CPC v2: 64).
            context_hidden_dim: channels inside the context network's blocks (CPC v2: 256).
            context_layers: residual masked-convolution blocks of the context network (CPC v2: 5).
            patch_jitter: each patch shifted by up to this many pixels each way, within the image.
            patch_flip_prob: probability of flipping each patch left-right.
            colour_drop_prob: probability of keeping one random colour channel of a patch (others set to 0).
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        require(grid_size >= 2, key + "grid_size", grid_size, ">= 2 (patches per row and column)")
        require(patch_size >= 1, key + "patch_size", patch_size, ">= 1 (pixels)")
        stride = max(1, patch_size // 2) if patch_stride is None else patch_stride
        require(stride >= 1, key + "patch_stride", patch_stride, "null (patch_size // 2) or >= 1 (pixels)")
        require(
            1 <= prediction_steps < grid_size,
            key + "prediction_steps",
            prediction_steps,
            f"in [1, grid_size - 1] = [1, {grid_size - 1}] (a target row must lie on the grid)",
        )
        require(
            1 <= min_step <= prediction_steps,
            key + "min_step",
            min_step,
            f"in [1, prediction_steps] = [1, {prediction_steps}]",
        )
        require(target_dim is None or target_dim >= 1, key + "target_dim", target_dim, "null or >= 1")
        require(context_hidden_dim >= 1, key + "context_hidden_dim", context_hidden_dim, ">= 1")
        require(context_layers >= 1, key + "context_layers", context_layers, ">= 1")
        require(patch_jitter >= 0, key + "patch_jitter", patch_jitter, ">= 0 (pixels)")
        for name, value in (("patch_flip_prob", patch_flip_prob), ("colour_drop_prob", colour_drop_prob)):
            require(is_finite(value) and 0 <= value <= 1, key + name, value, "a probability in [0, 1]")
        self.patch_stride = stride
        dim = self.backbone.feature_dim
        self.context_network = ContextNetwork(dim, context_hidden_dim, context_layers)
        self.steps = tuple(range(min_step, prediction_steps + 1))
        self.target_projection = nn.Identity() if target_dim is None else nn.Linear(dim, target_dim, bias=False)
        self.predictors = nn.ModuleList(nn.Linear(dim, target_dim or dim, bias=False) for _ in self.steps)
        self.criterion = CPCLoss(self.steps)

    @property
    def grid_span(self) -> int:
        """Pixels the grid covers along each side: ``P + (G - 1) s``."""
        return self.hparams.patch_size + (self.hparams.grid_size - 1) * self.patch_stride

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and datamodule is not None and hasattr(datamodule, "image_size"):
            self._require_grid_fits(datamodule.image_size, datamodule.image_size)
        super().setup(stage)

    def training_step(self, batch, batch_idx):
        views, labels = batch
        images = views[0]
        loss, logs = self.cpc_objective(images)
        self.log("train/cpc_loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        self.log_dict({f"train/cpc_{name}": value for name, value in logs.items()}, sync_dist=True)
        with torch.no_grad():
            whole_image_features = self.backbone(images)
        return loss + self.online_probe_step(whole_image_features, labels)

    def cpc_objective(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The CPC loss of a batch of images and its per-step logs (loss, top-1 accuracy, MI estimate)."""
        batch_size, grid = images.shape[0], self.hparams.grid_size
        patches = self.cut_patches(images)  # (B, G*G, C, P, P), row-major
        z = self.backbone(patches.flatten(0, 1)).view(batch_size, grid, grid, -1)  # z_{i,j}
        c = self.context(z)  # c_{i,j}, rows <= i
        predictions = [predictor(c) for predictor in self.predictors]  # zhat_{i+k,j} = W_k c_{i,j}
        return self.criterion(predictions, self.target_projection(z))

    def context(self, z: torch.Tensor) -> torch.Tensor:
        """``c = g_ar(z)`` for ``(B, G, G, D)`` encodings, channels last in and out."""
        return self.context_network(z.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def cut_patches(self, images: torch.Tensor) -> torch.Tensor:
        """The ``(B, G*G, C, P, P)`` grid of patches, row-major, with the patch augmentation."""
        batch_size, channels, height, width = images.shape
        self._require_grid_fits(height, width)
        hparams, device = self.hparams, images.device
        grid, size = hparams.grid_size, hparams.patch_size
        steps = torch.arange(grid, device=device) * self.patch_stride
        top = steps[:, None].expand(grid, grid).flatten()[None, :]
        left = steps[None, :].expand(grid, grid).flatten()[None, :]
        room = height - self.grid_span, width - self.grid_span
        top = top + torch.randint(room[0] + 1, (batch_size, 1), device=device)  # zero when the grid fills it
        left = left + torch.randint(room[1] + 1, (batch_size, 1), device=device)
        if hparams.patch_jitter:
            shift = torch.randint(-hparams.patch_jitter, hparams.patch_jitter + 1, (2, *top.shape), device=device)
            top = (top + shift[0]).clamp(0, height - size)
            left = (left + shift[1]).clamp(0, width - size)
        patches = crop_tiles(images, top, left, size)
        if hparams.patch_flip_prob:
            flip = torch.rand(patches.shape[:2], device=device) < hparams.patch_flip_prob
            patches = torch.where(flip[..., None, None, None], patches.flip(-1), patches)
        if hparams.colour_drop_prob:
            drop = torch.rand(patches.shape[:2], device=device) < hparams.colour_drop_prob
            kept = torch.randint(channels, patches.shape[:2], device=device)
            keep = nn.functional.one_hot(kept, channels).bool() | ~drop[..., None]
            patches = patches * keep[..., None, None].to(patches.dtype)
        return patches

    def _require_grid_fits(self, height: int, width: int) -> None:
        hparams = self.hparams
        require(
            self.grid_span <= min(height, width),
            "model.init_args.grid_size",
            hparams.grid_size,
            f"small enough that the grid fits the {height}x{width} images (data.init_args.image_size): "
            f"{hparams.grid_size} patches of {hparams.patch_size} px at stride {self.patch_stride} span "
            f"{self.grid_span} px; lower grid_size, patch_size or patch_stride",
        )
