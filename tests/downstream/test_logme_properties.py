"""LogME at extreme but legal inputs: scales 1e-4..1e4, D from 1 to beyond N, degenerate columns, one class."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from downstream.logme import logme
from tests.downstream.test_logme import log_evidence

PROPERTY = settings(max_examples=10, deadline=None, derandomize=True)

seeds = st.integers(0, 2**31 - 1)
scales = st.one_of(st.sampled_from([1e-4, 1e4]), st.floats(-4, 4).map(lambda exponent: 10.0**exponent))


def reference_logme(features: np.ndarray, labels: np.ndarray, iterations: int = 10_000) -> float:
    """You et al. 2021, Algorithm 1, with explicit D x D matrices in float64.

    For each class: alpha, beta <- 1; repeat m = beta A^-1 F^T y (A = alpha I + beta F^T F),
    gamma = sum_i beta s_i / (alpha + beta s_i), alpha = gamma / m.m, beta = (N - gamma) / ||F m - y||^2
    until both change by < 1e-12 (relative); the evidence at the fixed point, over N, averaged over classes.
    Where the evidence is largest at alpha -> infinity (no signal: w = 0), alpha stops at 1e12 times the
    largest eigenvalue, where the evidence is its limit to ~1e-12.
    """
    count, dim = features.shape
    gram = features.T @ features
    eigenvalues = np.clip(np.linalg.eigvalsh(gram), 0, None)
    largest_alpha = 1e12 * max(eigenvalues.max(), 1e-300)
    evidences = []
    for label in np.unique(labels):
        target = (labels == label).astype(float)
        alpha = beta = 1.0
        for _ in range(iterations):
            precision = alpha * np.eye(dim) + beta * gram
            mean = beta * np.linalg.solve(precision, features.T @ target)
            gamma = np.sum(beta * eigenvalues / (alpha + beta * eigenvalues))
            new_alpha = min(gamma / (mean @ mean), largest_alpha) if mean @ mean > 0 else largest_alpha
            new_beta = (count - gamma) / np.sum((features @ mean - target) ** 2)
            done = abs(new_alpha / alpha - 1) < 1e-12 and abs(new_beta / beta - 1) < 1e-12
            alpha, beta = new_alpha, new_beta
            if done:
                break
        evidences.append(log_evidence(features, target, alpha, beta) / count)
    return float(np.mean(evidences))


@st.composite
def labelled_features(draw, max_count: int = 100, wide: bool = True, min_classes: int = 1):
    """Gaussian features whose first columns carry the class (or not), N in [4, max_count], D up to 2N (or N/2)."""
    generator = torch.Generator().manual_seed(draw(seeds))
    count = draw(st.integers(4, max_count))
    dim = draw(st.integers(1, 2 * count if wide else max(1, count // 2)))
    classes = draw(st.integers(min_classes, 6))
    labels = torch.randint(0, classes, (count,), generator=generator)
    features = torch.randn(count, dim, generator=generator, dtype=torch.float64)
    signal = draw(st.sampled_from([0.0, 0.3, 3.0]))
    columns = min(dim, classes)
    features[:, :columns] += signal * torch.nn.functional.one_hot(labels, classes)[:, :columns].double()
    return features, labels


def random_rotation(generator: torch.Generator, dim: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


@PROPERTY
@given(labelled_features(max_count=120, wide=False))
def test_logme_is_the_float64_fixed_point_of_algorithm_1(data):
    """On well-conditioned inputs (D <= N/2), LogME equals a direct float64 implementation of the paper's algorithm."""
    features, labels = data
    assert logme(features, labels) == pytest.approx(reference_logme(features.numpy(), labels.numpy()), abs=1e-6)


@PROPERTY
@given(labelled_features(), scales)
def test_logme_does_not_depend_on_the_scale_of_the_features(data, scale):
    """F -> cF is absorbed by alpha -> alpha / c^2: the same maximum evidence for c in [1e-4, 1e4]."""
    features, labels = data
    assert logme(scale * features, labels) == pytest.approx(logme(features, labels), abs=1e-6)


@PROPERTY
@given(labelled_features(), seeds)
def test_logme_does_not_depend_on_the_order_or_a_rotation_of_the_features(data, seed):
    """The weights' prior is isotropic: permuting the columns, or rotating F by an orthogonal Q, changes nothing."""
    features, labels = data
    generator = torch.Generator().manual_seed(seed)
    expected = logme(features, labels)
    permuted = features[:, torch.randperm(features.shape[1], generator=generator)]
    rotated = features @ random_rotation(generator, features.shape[1])
    assert logme(permuted, labels) == pytest.approx(expected, abs=1e-6)
    assert logme(rotated, labels) == pytest.approx(expected, abs=1e-6)


@PROPERTY
@given(labelled_features(max_count=80, wide=False, min_classes=2), st.integers(1, 4), seeds)
def test_duplicate_and_constant_columns_keep_logme_finite_and_exact(data, copies, seed):
    """Rank-deficient F^T F (a column repeated, a constant column): finite, and still the reference value.

    Two classes at least: with one, the constant column fits the all-ones target exactly (see below).
    """
    features, labels = data
    generator = torch.Generator().manual_seed(seed)
    repeated = features[:, torch.randint(0, features.shape[1], (copies,), generator=generator)]
    degenerate = torch.cat([features, repeated, torch.full((len(features), 1), 2.5, dtype=torch.float64)], dim=1)
    value = logme(degenerate, labels)
    assert math.isfinite(value)
    assert value == pytest.approx(reference_logme(degenerate.numpy(), labels.numpy()), abs=1e-6)


@PROPERTY
@given(labelled_features(), scales)
def test_a_single_class_scores_a_finite_value(data, scale):
    """Every example in one class (the target is all ones): finite and scale-free.

    A constant column fits that target exactly, where the evidence grows without bound as beta -> infinity:
    LogME stays finite (the residual is floored at 1e-12), above the inexact fit.
    """
    features, _ = data
    one_class = torch.zeros(len(features), dtype=torch.long)
    value = logme(scale * features, one_class)
    assert math.isfinite(value)
    assert value == pytest.approx(logme(features, one_class), abs=1e-6)
    with_bias = torch.cat([features, torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    exact_fit = logme(scale * with_bias, one_class)
    assert math.isfinite(exact_fit) and exact_fit > value


@PROPERTY
@given(labelled_features(), scales)
def test_float32_features_give_the_float64_value(data, scale):
    """Backbones hand over float32: LogME computes in float64 whatever it is given."""
    features, labels = data
    single = (scale * features).float()
    assert logme(single, labels) == pytest.approx(logme(single.double(), labels), abs=1e-9)
