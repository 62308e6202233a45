"""The entry checks every transferability score shares: arrays in, float64 and class indices out.

Each check raises :class:`~selfsup.errors.ConfigurationError` with one line that names the
argument and the values it accepts. The returned arrays may share memory with the caller's
tensor or array; no score writes into them, so the inputs are never changed.
"""

from numbers import Integral, Real

import numpy as np
import torch

from selfsup.errors import ConfigurationError


def as_numpy(values) -> np.ndarray:
    """A CPU NumPy view or copy of a tensor or array-like."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def class_indices(labels, count: int, score: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels as indices 0..C-1 (in sorted order of the label values) and the size of every class."""
    labels = as_numpy(labels)
    if labels.ndim != 1 or len(labels) != count:
        raise ConfigurationError(
            f"{score}: labels must be 1-D with one entry per sample ({count}), got shape {labels.shape}."
        )
    _, indices, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    if len(sizes) < 2:
        raise ConfigurationError(f"{score}: labels must hold at least 2 classes, got {len(sizes)}.")
    return indices, sizes


def as_features(features, score: str) -> np.ndarray:
    """Features as float64 (N x D); refuses anything but a finite 2-D array with N >= 2 rows."""
    features = as_numpy(features).astype(np.float64, copy=False)
    if features.ndim != 2 or features.shape[0] < 2 or features.shape[1] < 1:
        raise ConfigurationError(
            f"{score}: features must be 2-D, N samples x D dimensions with N >= 2 and D >= 1, "
            f"got shape {features.shape}."
        )
    non_finite_rows = int((~np.isfinite(features)).any(axis=1).sum())
    if non_finite_rows:
        raise ConfigurationError(
            f"{score}: features must be finite, got NaN or infinite values in {non_finite_rows} "
            f"of {len(features)} rows."
        )
    return features


def features_and_classes(
    features, labels, score: str, smallest_class: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features as float64 (N x D), labels as class indices, and the class sizes; refuses bad input.

    ``smallest_class`` is the number of samples every class needs (2 where a score
    estimates a per-class spread).
    """
    features = as_features(features, score)
    indices, sizes = class_indices(labels, len(features), score)
    if sizes.min() < smallest_class:
        raise ConfigurationError(
            f"{score}: every class must have at least {smallest_class} samples, got a class with {sizes.min()}."
        )
    return features, indices, sizes


def is_integer(value) -> bool:
    """An integer of any integral type, booleans excluded."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_positive_number(value) -> bool:
    """A finite real number > 0 (booleans excluded); NaN fails, as it fails every comparison."""
    return isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value) and value > 0


def require_option(valid: bool, score: str, name: str, value, expected: str) -> None:
    """Raise ``"<score>: <name> must be <expected>, got <value>."`` unless ``valid``."""
    if not valid:
        raise ConfigurationError(f"{score}: {name} must be {expected}, got {value!r}.")
