"""How well a score ranks checkpoints against their accuracy after training, with bootstrap intervals.

Kendall's tau counts the pairs of checkpoints that the score and the accuracy order alike;
weighted tau (Vigna 2015, with scipy's default hyperbolic weights) counts pairs
near the top of either ranking more, which is what choosing one checkpoint needs.

The intervals are percentile intervals of a two-level bootstrap (Davison & Hinkley 1997,
§3.8): each resample draws the checkpoints with replacement and, for each drawn checkpoint,
its seeds with replacement (a score and an accuracy of the same seed stay paired), then
ranks the means. A checkpoint drawn twice enters with the same seeds both times, so the
pair of its copies is tied in the score and in the accuracy alike, which tau-b leaves out:
every resample's tau counts pairs of distinct checkpoints only, and a perfect ranking stays
1 in every resample. ``scipy.stats.bootstrap`` resamples one level only, hence this
function. A resample in which every drawn checkpoint ties on either side has no tau and
is skipped.
"""

from dataclasses import dataclass

import numpy as np

from selfsup.errors import ConfigurationError


@dataclass(frozen=True)
class Agreement:
    """Kendall's tau and weighted tau of a score against accuracy, and their 95% intervals (NaN: none)."""

    tau: float
    weighted_tau: float
    tau_interval: tuple[float, float]
    weighted_interval: tuple[float, float]
    checkpoints: int

    def interval_excludes_zero(self) -> bool:
        low, high = self.tau_interval
        return bool(low > 0 or high < 0)


def agreement(
    scores: list[list[float]], accuracies: list[list[float]], resamples: int = 1000, seed: int = 0
) -> Agreement:
    """Agreement of ``scores`` with ``accuracies``: one list of per-seed values per checkpoint, paired by seed.

    A checkpoint whose score is NaN on a seed is ranked on its other seeds; one with no finite
    score is dropped. ``resamples = 0`` gives no intervals (NaN).
    """
    if len(scores) != len(accuracies):
        raise ConfigurationError(f"agreement: {len(scores)} checkpoints of scores but {len(accuracies)} of accuracies.")
    if not isinstance(resamples, int) or isinstance(resamples, bool) or resamples < 0:
        raise ConfigurationError(f"agreement: resamples must be an integer >= 0, got {resamples!r}.")
    pairs = []
    for score, accuracy in zip(scores, accuracies):
        if len(score) != len(accuracy):
            raise ConfigurationError(
                f"agreement: a checkpoint has {len(score)} seeds of scores but {len(accuracy)} of accuracies."
            )
        kept = [(s, a) for s, a in zip(score, accuracy) if np.isfinite(s) and np.isfinite(a)]
        if kept:
            pairs.append(np.array(kept, dtype=np.float64))
    nan = float("nan")
    if len(pairs) < 3:
        return Agreement(nan, nan, (nan, nan), (nan, nan), len(pairs))
    tau, weighted = _taus([pair.mean(axis=0) for pair in pairs])
    rng = np.random.default_rng(seed)
    seed_means = np.stack(
        [pair[rng.integers(len(pair), size=(resamples, len(pair)))].mean(axis=1) for pair in pairs], axis=1
    )  # resamples x checkpoints x (score, accuracy)
    chosen = rng.integers(len(pairs), size=(resamples, len(pairs)))
    drawn = np.take_along_axis(seed_means, chosen[:, :, None], axis=1)
    taus = tau_b(drawn[:, :, 0], drawn[:, :, 1])
    weighted_taus = weighted_tau(drawn[:, :, 0], drawn[:, :, 1])
    kept = np.isfinite(taus)
    return Agreement(tau, weighted, _interval(taus[kept]), _interval(weighted_taus[kept]), len(pairs))


def tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row of ``x`` against the same row of ``y`` (R x n).

    tau-b = sum sx sy / sqrt(sum sx^2 sum sy^2), sx and sy the signs of the differences over
    the pairs i < j; NaN where a side is all ties. Equal to ``scipy.stats.kendalltau``.
    """
    return _pairwise_tau(x, y, np.ones_like(x[:, :, None] - x[:, None, :]))


def weighted_tau(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Vigna's weighted tau of each row pair, equal to ``scipy.stats.weightedtau``'s default.

    A pair (i, j) weighs w(r_i) + w(r_j), w(r) = 1 / (r + 1), r the place of an element when
    sorted decreasingly by (x, y) lexicographically; the tau-b of those weights is averaged
    with the one of places by (y, x). Vectorised over rows: scipy's per-call overhead,
    times a thousand resamples, was most of a report's time.
    """
    return (_pairwise_tau(x, y, _rank_weights(x, y)) + _pairwise_tau(x, y, _rank_weights(y, x))) / 2


def _rank_weights(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    places = np.empty_like(first)
    order = np.lexsort((second, first), axis=-1)[:, ::-1]
    np.put_along_axis(places, order, np.broadcast_to(np.arange(first.shape[1], dtype=first.dtype), first.shape), -1)
    weights = 1.0 / (places + 1.0)
    return weights[:, :, None] + weights[:, None, :]


def _pairwise_tau(x: np.ndarray, y: np.ndarray, pair_weights: np.ndarray) -> np.ndarray:
    upper = np.triu_indices(x.shape[1], k=1)
    sx = np.sign(x[:, :, None] - x[:, None, :])[:, upper[0], upper[1]]
    sy = np.sign(y[:, :, None] - y[:, None, :])[:, upper[0], upper[1]]
    weights = pair_weights[:, upper[0], upper[1]]
    denominator = np.sqrt((weights * sx * sx).sum(axis=1) * (weights * sy * sy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (weights * sx * sy).sum(axis=1) / denominator, np.nan)


def _taus(means: list[np.ndarray]) -> tuple[float, float]:
    predicted, truth = np.array([[mean[0] for mean in means]]), np.array([[mean[1] for mean in means]])
    return float(tau_b(predicted, truth)[0]), float(weighted_tau(predicted, truth)[0])


def _interval(values: np.ndarray) -> tuple[float, float]:
    if not len(values):
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
