"""Taskonomy affinity: rank the sources transferred to one target by their wins on each test example.

Zamir, Sax, Shen, Guibas, Malik, Savarese, "Taskonomy: Disentangling Task Transfer Learning",
CVPR 2018, §3.3, ordinal normalisation by the analytic hierarchy process (Saaty 1987;
Matsui & Kumagai, *Transfer Learning*, eq. 6.15). For one target, with L_k(x) the test loss
on example x of the model transferred from source k (K sources, the same M test examples),

    W[i, j]  = 1/M sum_x ( [L_i(x) < L_j(x)] + 1/2 [L_i(x) = L_j(x)] )     (win rate of i over j)
    W~       = clip(W, 0.001, 0.999)                                         (the paper's smoothing)
    W'[i, j] = W~[i, j] / W~[j, i]                                           (W' = W~ / W~^T, eq. 3)
    affinity = v / sum v,   W' v = lambda_max v                              (the Perron vector)

A tie counts half a win to each side, so W[i, j] + W[j, i] = 1 and W[i, i] = 1/2. The paper
clips the win rates to [0.001, 0.999] "as a form of Laplace smoothing", so that a source
that wins (or loses) on every example gives the finite ratio 999 (or 1/999) rather than a
division by zero; ``clip`` sets the bound. W' is then a positive reciprocal matrix
(W'[j, i] = 1 / W'[i, j], unit diagonal), the pairwise comparison matrix of the analytic
hierarchy process, and by Perron-Frobenius its principal eigenvector is positive and unique
up to scale. Normalised to sum 1, it is the affinity: higher means the better source for
this target. It depends on the orderings of the losses on each example only, not on their
scale, which is why it compares targets whose losses are not commensurable.
"""

import numpy as np

from downstream.transferability._checks import as_numpy, is_positive_number, require_option
from selfsup.errors import ConfigurationError

#: The paper's bound on the win rates: W is clipped to [CLIP, 1 - CLIP].
CLIP = 0.001


def win_rates(losses) -> np.ndarray:
    """W (K x K): the fraction of test examples where source i's loss is below source j's, ties counting half.

    ``losses`` is K x M (sources x test examples; array or tensor) or a dict name -> M losses,
    taken in the dict's order.
    """
    losses = _losses(losses, "win_rates")
    wins = np.empty((len(losses), len(losses)))
    for i, row in enumerate(losses):
        wins[i] = ((row < losses) + 0.5 * (row == losses)).mean(axis=1)
    return wins


def tournament_ratios(losses, clip: float = CLIP) -> np.ndarray:
    """W' (K x K): the clipped win rate of i over j divided by that of j over i; positive and reciprocal."""
    require_option(is_positive_number(clip) and clip < 0.5, "tournament_ratios", "clip", clip, "a number in (0, 0.5)")
    clipped = np.clip(win_rates(losses), clip, 1.0 - clip)
    return clipped / clipped.T


def affinity_ranking(losses, clip: float = CLIP) -> np.ndarray:
    """Affinities (K,) of the sources to the target, the principal eigenvector of W' summing to 1; higher is better.

    ``losses`` as for :func:`win_rates`; the entries follow its rows or the dict's order.
    """
    require_option(is_positive_number(clip) and clip < 0.5, "affinity_ranking", "clip", clip, "a number in (0, 0.5)")
    ratios = tournament_ratios(losses, clip)
    eigenvalues, eigenvectors = np.linalg.eig(ratios)
    principal = np.real(eigenvectors[:, np.argmax(np.real(eigenvalues))])
    principal = np.abs(principal)  # the Perron vector has one sign; this fixes it and drops rounding-level noise
    return principal / principal.sum()


def _losses(losses, score: str) -> np.ndarray:
    if isinstance(losses, dict):
        if not losses:
            raise ConfigurationError(f"{score}: losses must hold at least one source, got an empty dict.")
        rows = {name: as_numpy(values).astype(np.float64, copy=False) for name, values in losses.items()}
        for name, row in rows.items():
            if row.ndim != 1:
                raise ConfigurationError(
                    f"{score}: losses[{name!r}] must be 1-D, one loss per test example, got shape {row.shape}."
                )
        lengths = {name: len(row) for name, row in rows.items()}
        if len(set(lengths.values())) != 1:
            raise ConfigurationError(
                f"{score}: every source must have losses on the same M test examples, got lengths {lengths}."
            )
        losses = np.stack(list(rows.values()))
    else:
        try:
            losses = as_numpy(losses).astype(np.float64, copy=False)
        except ValueError as error:
            raise ConfigurationError(
                f"{score}: losses must be numbers, K sources x M test examples in rows of one length, "
                f"got values that do not make one array ({error})."
            ) from None
    if losses.ndim != 2 or losses.shape[0] < 1 or losses.shape[1] < 1:
        raise ConfigurationError(
            f"{score}: losses must be 2-D, K sources x M test examples with K, M >= 1, got shape {losses.shape}."
        )
    non_finite = int((~np.isfinite(losses)).sum())
    if non_finite:
        raise ConfigurationError(
            f"{score}: losses must be finite, got {non_finite} NaN or infinite of {losses.size} values."
        )
    return losses
