"""The ``logistic`` protocol's L-BFGS regression and the feature standardisation both probes share."""

import torch

from downstream.logistic import LogisticRegression
from downstream.recipes import LogisticRecipe
from downstream.standardize import Standardization


def separable(count: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(count, 5, generator=generator)
    return features, (features[:, 0] + 0.5 * features[:, 3] > 0).long()


def test_logistic_regression_separates_linearly_separable_data():
    features, labels = separable()
    probe = LogisticRegression(2, LogisticRecipe(weight_decay=1e-4)).fit(features, labels)
    assert (probe.predict(features) == labels).float().mean() > 0.98


def test_logistic_regression_is_a_deterministic_function_of_features_and_labels():
    features, labels = separable()
    first, second = (LogisticRegression(2, LogisticRecipe()).fit(features, labels) for _ in range(2))
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)
    assert first.weight.abs().sum() > 0


def test_standardised_logistic_regression_ignores_the_scale_of_the_features():
    features, labels = separable()
    test_features, _ = separable(seed=1)
    scale = torch.tensor([1e3, 1e-3, 1.0, 50.0, 1e-2])
    plain = LogisticRegression(2, LogisticRecipe()).fit(features, labels).predict(test_features)
    scaled = LogisticRegression(2, LogisticRecipe()).fit(features * scale, labels).predict(test_features * scale)
    assert torch.equal(plain, scaled)


def test_standardization_centres_and_scales_the_training_features_and_zeroes_a_constant_one():
    features = torch.randn(64, 3) * torch.tensor([10.0, 0.1, 0.0]) + torch.tensor([5.0, -2.0, 7.0])
    standardized = Standardization.fit(features)(features)
    torch.testing.assert_close(standardized[:, :2].mean(dim=0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(standardized[:, :2].std(dim=0), torch.ones(2), atol=1e-5, rtol=0)
    assert torch.equal(standardized[:, 2], torch.zeros(64))
