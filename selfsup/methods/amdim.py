"""AMDIM: maximise the mutual information between views, across scales of the encoder.

Bachman, Hjelm & Buchwalter, "Learning Representations by Maximizing Mutual Information
Across Views", NeurIPS 2019 (Augmented Multiscale Deep InfoMax), §3; textbook: Matsui &
Kumagai, *Transfer Learning*, ch. 6, §6.2.3. Deep InfoMax's local objective, with the two
sides of each pair taken from two augmented views of the image. For a minibatch of images:

    draw two augmentations x1, x2 of each image
    maps = backbone stages of x1 (and of x2)
    f_1 = g_1(pool(last map))       the global "1x1" feature       (the representation kept)
    f_5 = g_5(maps[coarse_stage])   a local map, the paper's 5x5   every location embedded alike
    f_7 = g_7(maps[fine_stage])     a finer local map, the paper's 7x7
    1t5:  NCE(f_1(x1) -> every location of f_5(x2)),  and x2 -> x1
    1t7:  NCE(f_1(x1) -> every location of f_7(x2)),  and x2 -> x1
    5t5:  NCE(f_5(x1) at one random location -> every location of f_5(x2)),  and x2 -> x1
    loss = sum over the pairings of the mean of both directions, plus lambda * mean(raw score^2)

The NCE (eq. 3 of the paper; :mod:`selfsup.losses.amdim`) scores a source ``s`` against a
target location ``t`` by ``phi = c tanh(s . t / (sqrt(d) c))``: the dot product of the two
embeddings, scaled by their width ``d`` and soft-clipped at ``c = score_clip`` (the paper's
``tclip`` = 20); its negatives are every location of the other images of the global batch,
gathered from all ranks with gradients. The raw scores are also penalised by ``score_penalty``
times their mean square (5e-2, the public code's ``lgt_reg``). ``log N - NCE`` with ``N``
candidates is logged as each pairing's MI estimate, ``train/amdim_mi_<pairing>``.

Stages: the paper's encoder has maps of 7x7 and 5x5 just below its 1x1 output. Here any two
backbone stages serve: ``fine_stage`` (the paper's 7x7) and ``coarse_stage`` (its 5x5), a
later stage. On 16-px digits with ``small_conv`` (maps 16, 8, 4 and 2 px) the defaults -3
and -2 give 8x8 and 4x4 maps; ResNet-50 at 128 px (maps 32, 16, 8, 4) takes stages 2 and 3,
8x8 and 4x4 (``configs/pretrain/amdim_imagenet.yaml``). The global feature is the backbone's
feature (its pooled last map; a ViT's class token), what the monitors and downstream tasks use.

Embeddings: the paper's "fake RKHS" blocks (a 1x1-convolution MLP with a linear shortcut)
are the project's separable critics, :class:`selfsup.components.critics.ResidualEmbedding`
applied to every location; one per scale, shared by the scale's source and target roles (as
in the public code). Left out: that block's batch norm on the output, its identity
initialisation of the shortcut, and the public code's further layers between the 5x5 map and
the 1x1 output; ``g_1`` here is a residual embedding of the backbone's feature.
"""

import torch

from selfsup.components.critics import ResidualEmbedding
from selfsup.errors import is_finite, is_integer, require, require_sizes
from selfsup.losses.amdim import AMDIMLoss
from selfsup.methods.base import PretrainMethod

#: The paper's pairings: name -> (source scale, target scale).
PAIRINGS = {"1t5": ("global", "coarse"), "1t7": ("global", "fine"), "5t5": ("coarse", "coarse")}


class AMDIM(PretrainMethod):
    views_needed = 2

    def __init__(
        self,
        *args,
        fine_stage: int = -3,
        coarse_stage: int = -2,
        embedding_dim: int = 1024,
        pairings: tuple[str, ...] = tuple(PAIRINGS),
        score_clip: float = 20.0,
        score_penalty: float = 5e-2,
        **kwargs,
    ) -> None:
        """AMDIM's scales, embeddings and regularised NCE.

        Args:
            fine_stage: the backbone stage whose map is the paper's 7x7 (-3: 8x8 for small_conv at 16 px).
            coarse_stage: a later stage, the paper's 5x5 (-2: 4x4 for small_conv at 16 px).
            embedding_dim: d, the width of the embeddings the scores compare (the paper's n_rkhs).
            pairings: which of ``1t5``, ``1t7`` and ``5t5`` (source scale ``t`` target scale) to train.
            score_clip: c of the soft clip ``c * tanh(score / c)`` (the paper's tclip, 20).
            score_penalty: weight of the mean squared raw score, per pairing (the public code's 5e-2).
        """
        super().__init__(*args, **kwargs)
        key = "model.init_args."
        stages = len(self.backbone.stage_dims)
        for name, value in (("fine_stage", fine_stage), ("coarse_stage", coarse_stage)):
            require(
                is_integer(value) and -stages <= value < stages,
                key + name,
                value,
                f"a stage index of this {stages}-stage backbone, in [{-stages}, {stages - 1}]",
            )
        require(
            fine_stage % stages < coarse_stage % stages,
            key + "fine_stage",
            fine_stage,
            f"a stage before coarse_stage={coarse_stage} (the finer map comes first)",
        )
        require_sizes(key, embedding_dim=embedding_dim)
        require(
            isinstance(pairings, (list, tuple))
            and len(pairings) >= 1
            and all(isinstance(name, str) for name in pairings)
            and len(set(pairings)) == len(pairings)
            and all(name in PAIRINGS for name in pairings),
            key + "pairings",
            pairings,
            f"a non-empty list of distinct names among {list(PAIRINGS)}",
        )
        require(is_finite(score_clip) and score_clip > 0, key + "score_clip", score_clip, "a finite number > 0")
        require(
            is_finite(score_penalty) and score_penalty >= 0,
            key + "score_penalty",
            score_penalty,
            "a finite number >= 0",
        )
        self.stage_of = {"coarse": coarse_stage, "fine": fine_stage}
        self.scales = sorted({scale for name in pairings for scale in PAIRINGS[name]})
        widths = {"global": self.backbone.feature_dim} | {
            scale: self.backbone.stage_dims[stage] for scale, stage in self.stage_of.items()
        }
        self.embeddings = torch.nn.ModuleDict(
            {scale: ResidualEmbedding(widths[scale], embedding_dim) for scale in self.scales}
        )
        self.criterion = AMDIMLoss({name: PAIRINGS[name] for name in pairings}, score_clip, score_penalty)

    def training_step(self, batch, batch_idx):
        views, labels = batch
        loss, logs, features = self.amdim_objective(views[0], views[1])
        self.log("train/amdim_loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        self.log_dict({f"train/amdim_{name}": value for name, value in logs.items()}, sync_dist=True)
        return loss + self.online_probe_step(features, labels)

    def amdim_objective(
        self, view_1: torch.Tensor, view_2: torch.Tensor, source_locations: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """The loss, its logs and the backbone features of ``view_1`` (for the online probe).

        ``source_locations`` ``(2, n)``: the coarse map's location (row-major) that is each image's
        5t5 source in view 1 and view 2; drawn uniformly at random when None, as in the paper.
        """
        features, embedded_1 = self.encode(view_1)
        _, embedded_2 = self.encode(view_2)
        sources = {"global": (embedded_1["global"], embedded_2["global"])} if "global" in self.scales else {}
        if "5t5" in self.criterion.pairings:
            n, locations = embedded_1["coarse"].shape[:2]
            if source_locations is None:
                source_locations = torch.randint(locations, (2, n), device=view_1.device)
            rows = torch.arange(n, device=view_1.device)
            sources["coarse"] = (
                embedded_1["coarse"][rows, source_locations[0]],
                embedded_2["coarse"][rows, source_locations[1]],
            )
        targets = {scale: (embedded_1[scale], embedded_2[scale]) for scale in self.scales if scale != "global"}
        loss, logs = self.criterion(sources, targets)
        return loss, logs, features

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The backbone features ``(n, D)`` and the embedded scales: ``global`` ``(n, d)``, maps ``(n, H*W, d)``."""
        features, maps = self.backbone.forward_with_stages(images)
        embedded = {}
        for scale in self.scales:
            if scale == "global":
                embedded[scale] = self.embeddings[scale](features)
            else:
                locations = maps[self.stage_of[scale]].flatten(2).transpose(1, 2)  # (n, H*W, C), row-major
                embedded[scale] = self.embeddings[scale](locations)
        return features, embedded
