"""The protocols' settings; every field is a YAML key of ``configs/downstream/*.yaml``."""

from dataclasses import dataclass
from typing import Literal

from downstream.transferability import SCORES
from selfsup.errors import ConfigurationError, is_finite, require


@dataclass(frozen=True)
class KNNRecipe:
    """Weighted kNN on L2-normalised features (Wu et al. 2018): k and temperature."""

    k: int = 20
    temperature: float = 0.07

    def __post_init__(self) -> None:
        require(_is_count(self.k, 1), "knn.k", self.k, ">= 1 (the neighbours that vote)")
        require(
            is_finite(self.temperature) and self.temperature > 0,
            "knn.temperature",
            self.temperature,
            "a finite number > 0",
        )


@dataclass(frozen=True)
class LinearRecipe:
    """A linear classifier on the frozen backbone; the defaults are MoCo's protocol.

    He et al. 2020, sec. 4.1: backbone frozen with batch norm in eval mode, SGD with
    learning rate 30, momentum 0.9, no weight decay, global batch 256, 100 epochs, the
    rate divided by 10 at 60% and 80% of training (``schedule: step``; or ``cosine``),
    training images augmented by a random resized crop and a flip (``augment``).
    ``cache_features`` instead extracts the features once, without augmentation, and
    trains on them: the backbone runs once instead of every epoch. ``check_frozen``
    verifies afterwards that no backbone weight or batch-norm statistic changed.
    ``standardize`` subtracts each feature's training-set mean and divides by its
    deviation (a fixed affine map, the same on every rank): off in MoCo's protocol, it
    lets one learning rate (e.g. 0.1) suit backbones whose features differ in scale by
    orders of magnitude, such as a randomly initialised baseline.
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 30.0
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Literal["step", "cosine"] = "step"
    augment: bool = True
    crop_scale: tuple[float, float] = (0.08, 1.0)
    flip_prob: float = 0.5
    cache_features: bool = False
    check_frozen: bool = True
    standardize: bool = False

    def __post_init__(self) -> None:
        _check_training("linear", self)
        if self.cache_features and self.augment:
            raise ConfigurationError(
                "linear.cache_features extracts each image's features once, so it cannot augment: "
                "set linear.augment: false to cache, or linear.cache_features: false to augment."
            )


@dataclass(frozen=True)
class LogisticRecipe:
    """The ``logistic`` protocol: multinomial logistic regression fitted by L-BFGS (:mod:`downstream.logistic`).

    Full batch, from a zero start, on the cached features of the labelled subset: the
    L2 penalty is 0.5 x ``weight_decay`` x ||W||^2, at most ``max_iter`` L-BFGS
    iterations, the features standardised first (``standardize``).
    """

    weight_decay: float = 1e-3
    max_iter: int = 300
    standardize: bool = True

    def __post_init__(self) -> None:
        require(
            is_finite(self.weight_decay) and self.weight_decay >= 0,
            "logistic.weight_decay",
            self.weight_decay,
            "a finite number >= 0",
        )
        require(_is_count(self.max_iter, 1), "logistic.max_iter", self.max_iter, ">= 1")


@dataclass(frozen=True)
class FinetuneRecipe:
    """Fine-tuning the backbone with a new linear head.

    ``frozen_stages`` keeps the first N stages fixed (weights and batch-norm statistics).
    The trained stages get ``backbone_lr`` (default: ``lr``), or, with ``layer_decay``,
    stage s of S gets lr x layer_decay^(S - s). The usual supervised augmentation:
    random resized crop of scale ``crop_scale`` and a horizontal flip with
    ``flip_prob``. Cosine schedule.
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.1
    backbone_lr: float | None = None
    layer_decay: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    frozen_stages: int = 0
    crop_scale: tuple[float, float] = (0.08, 1.0)
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        _check_training("finetune", self)
        require(
            _is_count(self.frozen_stages, 0),
            "finetune.frozen_stages",
            self.frozen_stages,
            ">= 0 (the stages kept frozen, from the first)",
        )
        for name in ("backbone_lr", "layer_decay"):
            value = getattr(self, name)
            require(value is None or (is_finite(value) and value > 0), f"finetune.{name}", value, "null or > 0")


@dataclass(frozen=True)
class TransferabilityRecipe:
    """The ``transferability`` protocol: which scores, on which layers, and how the report ranks with them.

    ``scores`` names entries of :data:`downstream.transferability.SCORES` (empty: all of them).
    ``layers`` also scores every stage's pooled features, so the report can name each
    checkpoint's best layer. ``rank_by`` is the score that ranks the checkpoints in the
    report's answer to "which checkpoint?": leave-one-out kNN by default, the baseline that
    Kornblith-style benchmarks found hardest to beat. ``bootstrap`` resamples give the 95%
    intervals of Kendall's tau (0: no intervals).
    """

    scores: tuple[str, ...] = ()
    layers: bool = False
    rank_by: str = "knn_loo"
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        known = ", ".join(SCORES)
        scores = self.scores
        require(
            isinstance(scores, (tuple, list)) and all(isinstance(s, str) and s in SCORES for s in scores),
            "transferability.scores",
            scores,
            f"a list of scores among {known} (empty: all)",
        )
        require(len(set(scores)) == len(scores), "transferability.scores", scores, "a list naming each score once")
        require(
            self.rank_by in self.score_names(),
            "transferability.rank_by",
            self.rank_by,
            f"one of the scores computed ({', '.join(self.score_names())})",
        )
        require(isinstance(self.layers, bool), "transferability.layers", self.layers, "true or false")
        require(
            _is_count(self.bootstrap, 0) and self.bootstrap <= 100_000,
            "transferability.bootstrap",
            self.bootstrap,
            "an integer in [0, 100000] (resamples; 0: no intervals)",
        )

    def score_names(self) -> tuple[str, ...]:
        """The scores to compute, in the registry's order."""
        return tuple(name for name in SCORES if not self.scores or name in self.scores)


def _check_training(key: str, recipe) -> None:
    """The settings the SGD-trained protocols share."""
    require(_is_count(recipe.epochs, 1), f"{key}.epochs", recipe.epochs, ">= 1")
    require(_is_count(recipe.batch_size, 1), f"{key}.batch_size", recipe.batch_size, ">= 1")
    require(is_finite(recipe.lr) and recipe.lr > 0, f"{key}.lr", recipe.lr, "a finite number > 0")
    require(is_finite(recipe.momentum) and 0 <= recipe.momentum < 1, f"{key}.momentum", recipe.momentum, "in [0, 1)")
    require(
        is_finite(recipe.weight_decay) and recipe.weight_decay >= 0,
        f"{key}.weight_decay",
        recipe.weight_decay,
        "a finite number >= 0",
    )
    scale = tuple(recipe.crop_scale) if isinstance(recipe.crop_scale, (tuple, list)) else ()
    require(
        len(scale) == 2 and all(is_finite(bound) for bound in scale) and 0 < scale[0] <= scale[1] <= 1,
        f"{key}.crop_scale",
        recipe.crop_scale,
        "[low, high] with 0 < low <= high <= 1",
    )
    require(
        is_finite(recipe.flip_prob) and 0 <= recipe.flip_prob <= 1,
        f"{key}.flip_prob",
        recipe.flip_prob,
        "a probability in [0, 1]",
    )


def _is_count(value, low: int) -> bool:
    """An integer (not a boolean) >= ``low``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low
