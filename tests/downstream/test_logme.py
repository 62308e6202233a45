"""LogME against the evidence written out with explicit matrices and maximised numerically."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from downstream.logme import logme
from selfsup.errors import ConfigurationError


def log_evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """log p(y | F, alpha, beta) of Bayesian linear regression, straight from its definition."""
    count, dim = features.shape
    precision = alpha * np.eye(dim) + beta * features.T @ features
    mean = beta * np.linalg.solve(precision, features.T @ target)
    return (
        count / 2 * math.log(beta)
        + dim / 2 * math.log(alpha)
        - count / 2 * math.log(2 * math.pi)
        - beta / 2 * np.sum((features @ mean - target) ** 2)
        - alpha / 2 * mean @ mean
        - np.linalg.slogdet(precision)[1] / 2
    )


def brute_force_logme(features: np.ndarray, labels: np.ndarray) -> float:
    scores = []
    for label in np.unique(labels):
        target = (labels == label).astype(float)
        best = minimize(
            lambda log_ab, target: -log_evidence(features, target, *np.exp(log_ab)),
            args=(target,),
            x0=[0.0, 0.0],
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000},
        )
        scores.append(-best.fun / len(labels))
    return float(np.mean(scores))


@pytest.mark.parametrize(("count", "dim"), [(12, 3), (5, 8)], ids=["more-samples", "more-dimensions"])
def test_logme_is_the_maximum_evidence_per_example(count, dim):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(count, dim, generator=generator, dtype=torch.float64)
    labels = torch.arange(count) % 3
    features[:, 0] += labels.double()
    expected = brute_force_logme(features.numpy(), labels.numpy())
    assert logme(features, labels) == pytest.approx(expected, abs=1e-5)


def test_features_that_carry_the_labels_score_higher():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    noise = torch.randn(300, 16, generator=generator)
    informative = noise.clone()
    informative[:, :3] += 3 * torch.nn.functional.one_hot(labels, 3)
    assert logme(informative, labels) > logme(noise, labels) + 0.1


def test_a_collapsed_representation_scores_its_closed_form_instead_of_failing():
    """All-zero features: the evidence no longer depends on alpha; beta = N / ||y||^2 maximises it."""
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    count, expected = len(labels), []
    for label in labels.unique():
        squared_norm = float((labels == label).sum())
        beta = count / squared_norm
        evidence = count / 2 * math.log(beta) - count / 2 * math.log(2 * math.pi) - beta / 2 * squared_norm
        expected.append(evidence / count)
    assert logme(torch.zeros(count, 4), labels) == pytest.approx(np.mean(expected), rel=1e-9)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_features_are_refused_naming_the_cause(bad):
    features = torch.randn(10, 3)
    features[4, 1] = bad
    with pytest.raises(ConfigurationError, match="NaN or infinite"):
        logme(features, torch.randint(0, 2, (10,)))
