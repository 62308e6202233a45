"""Task2Vec against a hand computation of the Fisher of a linear probe, and its distances on real tasks."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from downstream.transferability.task2vec import (
    filter_names,
    fisher_embedding,
    fit_head,
    task_distance,
    task_distances,
    task_embedding,
)
from selfsup.errors import ConfigurationError


class TinyProbe(nn.Module):
    """Conv2d(1, 4, 3) - BN - tanh - 2x2 pool - flatten - Linear(36, 6): 4 + 6 filters on 8x8 images."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(1, 4, 3)
        self.norm = nn.BatchNorm2d(4)
        self.pool = nn.AvgPool2d(2)
        self.linear = nn.Linear(36, 6)
        self.feature_dim = 6

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(self.pool(torch.tanh(self.norm(self.conv(images)))).flatten(1))


class UnvectorisableProbe(TinyProbe):
    """The same network, with a ``.item()`` in its forward that ``torch.func.vmap`` cannot batch."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scale = 1.0 if math.isfinite(images.abs().max().item()) else 0.0
        return super().forward(images) * scale


class LinearProbe(nn.Module):
    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(inputs, outputs, dtype=torch.float64)
        self.feature_dim = outputs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(images)


def digits(classes=(0, 1, 2), per_class=20, seed=0):
    """sklearn's 8x8 digits of ``classes`` as 1 x 8 x 8 images in [0, 1], ``per_class`` of each."""
    data = load_digits()
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.choice(np.flatnonzero(data.target == c), per_class, replace=False) for c in classes])
    images = torch.tensor(data.images[chosen] / 16.0, dtype=torch.float32).unsqueeze(1)
    return images, torch.tensor(data.target[chosen])


def direct_linear_fisher(weight, bias, head_weight, head_bias, inputs):
    """sum_y p(y|x) (H^T (e_y - p) x^T)^2, averaged over the images and over each row's inputs, by loops."""
    outputs, width = weight.shape
    classes = len(head_weight)
    fisher = np.zeros((outputs, width))
    for x in inputs:
        logits = head_weight @ (weight @ x + bias) + head_bias
        p = np.exp(logits - logits.max())
        p /= p.sum()
        for y in range(classes):
            residual = np.eye(classes)[y] - p
            for row in range(outputs):
                back = sum(head_weight[k, row] * residual[k] for k in range(classes))
                for column in range(width):
                    fisher[row, column] += p[y] * (back * x[column]) ** 2
    return (fisher / len(inputs)).mean(axis=1)


def test_exact_fisher_of_a_linear_probe_matches_the_closed_form():
    torch.manual_seed(3)
    probe = LinearProbe(5, 3)
    head = nn.Linear(3, 4, dtype=torch.float64)
    inputs = torch.randn(6, 5, dtype=torch.float64)
    expected = direct_linear_fisher(
        *(t.detach().numpy() for t in (probe.linear.weight, probe.linear.bias, head.weight, head.bias, inputs))
    )
    embedding = fisher_embedding(probe, head, inputs, batch_size=4)
    assert embedding.dtype == torch.float64 and embedding.shape == (3,)
    np.testing.assert_allclose(embedding.numpy(), expected, rtol=1e-12)


def test_monte_carlo_fisher_approaches_the_exact_expectation_and_depends_on_the_seed():
    torch.manual_seed(4)
    probe = LinearProbe(5, 3)
    head = nn.Linear(3, 3, dtype=torch.float64)
    inputs = torch.randn(8, 5, dtype=torch.float64)
    exact = fisher_embedding(probe, head, inputs).numpy()
    drawn = fisher_embedding(probe, head, inputs, samples=300, seed=1).numpy()
    assert np.linalg.norm(drawn - exact) < 0.15 * np.linalg.norm(exact)
    again = fisher_embedding(probe, head, inputs, samples=300, seed=1).numpy()
    other = fisher_embedding(probe, head, inputs, samples=300, seed=2).numpy()
    np.testing.assert_array_equal(drawn, again)
    assert not np.array_equal(drawn, other)


def test_fitted_head_is_a_stationary_point_of_the_regularised_cross_entropy():
    rng = np.random.default_rng(5)
    labels = np.array([7, 3, 5] * 10)
    features = rng.normal(size=(30, 4)) + 2.0 * np.eye(4)[np.searchsorted([3, 5, 7], labels)]
    head = fit_head(torch.tensor(features), labels, head_weight_decay=0.1)
    weight, bias = head.weight.numpy(), head.bias.numpy()
    logits = features @ weight.T + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    residual = p - np.eye(3)[np.searchsorted([3, 5, 7], labels)]  # class k is the k-th smallest label
    np.testing.assert_allclose(residual.T @ features / 30 + 0.1 * weight, 0, atol=1e-6)
    np.testing.assert_allclose(residual.mean(axis=0), 0, atol=1e-6)


def test_task_embedding_is_the_fisher_under_the_fitted_head_one_entry_per_filter():
    images, labels = digits()
    probe = TinyProbe()
    embedding = task_embedding(probe, images, labels)
    assert filter_names(probe) == ["conv.weight", "linear.weight"]
    assert embedding.dtype == torch.float64 and embedding.shape == (4 + 6,)
    assert (embedding > 0).all()
    features = probe.double().eval()(images.double()).detach()
    head = fit_head(features, labels)
    np.testing.assert_allclose(embedding.numpy(), fisher_embedding(probe, head, images).numpy(), rtol=1e-12)


def test_the_probe_is_left_unchanged():
    images, labels = digits(per_class=8)
    probe = TinyProbe().train()
    probe.conv.bias.requires_grad_(False)
    probe.linear.eval()
    state = {name: tensor.clone() for name, tensor in probe.state_dict().items()}
    flags = {name: parameter.requires_grad for name, parameter in probe.named_parameters()}
    modes = {name: module.training for name, module in probe.named_modules()}
    dtypes = {name: parameter.dtype for name, parameter in probe.named_parameters()}
    task_embedding(probe, images, labels)
    task_embedding(probe, images, labels, samples=2)
    after = probe.state_dict()
    assert state.keys() == after.keys()
    for name, tensor in state.items():
        assert torch.equal(tensor, after[name]) and tensor.dtype == after[name].dtype, name
    assert flags == {name: parameter.requires_grad for name, parameter in probe.named_parameters()}
    assert modes == {name: module.training for name, module in probe.named_modules()}
    assert dtypes == {name: parameter.dtype for name, parameter in probe.named_parameters()}
    assert all(parameter.grad is None for parameter in probe.parameters())


def test_the_same_seed_gives_the_same_embedding():
    images, labels = digits(per_class=10)
    for samples in (None, 3):
        first = task_embedding(TinyProbe(), images, labels, samples=samples, seed=7, batch_size=7)
        second = task_embedding(TinyProbe(), images, labels, samples=samples, seed=7, batch_size=7)
        assert torch.equal(first, second)


def test_a_probe_that_vmap_cannot_batch_gives_the_same_embedding_one_image_at_a_time():
    images, labels = digits(per_class=6)
    vectorised = task_embedding(TinyProbe(), images, labels, batch_size=8)
    with pytest.warns(UserWarning, match="one image at a time"):
        looped = task_embedding(UnvectorisableProbe(), images, labels, batch_size=8)
    np.testing.assert_allclose(looped.numpy(), vectorised.numpy(), rtol=1e-10)


def test_distance_is_zero_for_the_same_task_symmetric_and_in_the_unit_interval():
    images, labels = digits()
    probe = TinyProbe()
    original = task_embedding(probe, images, labels)
    same = task_embedding(probe, images.clone(), labels.clone())
    other = task_embedding(probe, *digits(classes=(3, 8), seed=1))
    assert task_distance(original, same) == pytest.approx(0.0, abs=1e-12)
    assert task_distance(original, 2.5 * original) == pytest.approx(0.0, abs=1e-12)  # the distance ignores scale
    assert task_distance(original, other) == task_distance(other, original)
    assert 0 < task_distance(original, other) <= 1


def test_relabelled_task_is_farther_than_a_resampled_half_with_the_same_labels():
    images, labels = digits(classes=(0, 1, 2, 3), per_class=15)
    probe = TinyProbe()
    rng = np.random.default_rng(0)
    original = task_embedding(probe, images, labels)
    half = torch.from_numpy(rng.permutation(len(labels))[: len(labels) // 2])
    resampled = task_embedding(probe, images[half], labels[half])
    relabelled = task_embedding(probe, images, labels[torch.from_numpy(rng.permutation(len(labels)))])
    assert task_distance(original, resampled) < task_distance(original, relabelled)
    names, matrix = task_distances({"original": original, "resampled": resampled, "relabelled": relabelled})
    assert names == ["original", "resampled", "relabelled"]
    np.testing.assert_array_equal(matrix, matrix.T)
    np.testing.assert_array_equal(np.diag(matrix), 0)
    assert matrix[0, 1] == task_distance(original, resampled) and matrix[0, 2] == task_distance(original, relabelled)


def test_distance_leaves_out_entries_zero_in_both_embeddings():
    a, b = np.array([1.0, 0.0, 3.0, 0.0]), np.array([2.0, 0.0, 1.0, 5.0])
    ra, rb = np.array([1 / 3, 3 / 4, 0.0]), np.array([2 / 3, 1 / 4, 1.0])  # a / (a + b), b / (a + b) without entry 1
    expected = 1 - ra @ rb / (np.linalg.norm(ra) * np.linalg.norm(rb))
    assert task_distance(a, b) == pytest.approx(expected, rel=1e-12)
    assert task_distance(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected, rel=1e-12)


def _images():
    return digits(per_class=4)[0]


def _labels():
    return digits(per_class=4)[1]


def _nan_images():
    images = _images()
    images[3, 0, 2, 2] = float("nan")
    return images


class NoFilters(nn.Module):
    feature_dim = 64

    def forward(self, images):
        return images.flatten(1)


class MapProbe(TinyProbe):
    def forward(self, images):
        return self.conv(images)


EMBEDDING = np.array([1.0, 2.0, 3.0])
BAD_INPUTS = {
    "nan-image": (lambda: task_embedding(TinyProbe(), _nan_images(), _labels()), "images must be finite"),
    "integer-images": (lambda: task_embedding(TinyProbe(), _labels()[:, None], _labels()), "floating-point"),
    "labels-too-short": (lambda: task_embedding(TinyProbe(), _images(), _labels()[:-1]), "one entry per sample"),
    "one-class": (lambda: task_embedding(TinyProbe(), _images(), torch.zeros(12)), "at least 2 classes"),
    "no-filters": (lambda: task_embedding(NoFilters(), _images(), _labels()), "at least one Conv1d/2d/3d or Linear"),
    "not-a-module": (lambda: task_embedding(lambda x: x, _images(), _labels()), "torch.nn.Module"),
    "map-features": (lambda: task_embedding(MapProbe(), _images(), _labels()), "N x D features"),
    "head-wrong-width": (lambda: fisher_embedding(TinyProbe(), nn.Linear(5, 3), _images()), "in_features=5"),
    "head-one-class": (lambda: fisher_embedding(TinyProbe(), nn.Linear(6, 1), _images()), "at least 2 outputs"),
    "distance-shapes": (lambda: task_distance(EMBEDDING, EMBEDDING[:2]), "same shape"),
    "distance-negative": (lambda: task_distance(EMBEDDING, -EMBEDDING), ">= 0"),
    "distance-nan": (lambda: task_distance(EMBEDDING, np.array([1.0, np.nan, 1.0])), "finite"),
    "distance-zeros": (lambda: task_distance(EMBEDDING, np.zeros(3)), "positive entry"),
    "distance-2d": (lambda: task_distance(EMBEDDING[None], EMBEDDING[None]), "1-D"),
    "distance-bool": (lambda: task_distance(EMBEDDING > 0, EMBEDDING > 0), "numeric"),
    "distances-empty": (lambda: task_distances({}), "non-empty mapping"),
}
BAD_OPTIONS = {
    "head_steps": [0, -1, 10**9, True, 2.5, float("nan")],
    "head_weight_decay": [-1.0, float("nan"), float("inf"), True, "0.1"],
    "samples": [0, -3, 10**9, True, 2.0],
    "batch_size": [0, -1, False, float("nan"), 4.0],
    "seed": [-1, 2**70, True, 1.5],
    "dtype": [torch.float16, "float64"],
}
for _option, _values in BAD_OPTIONS.items():
    for _value in _values:
        BAD_INPUTS[f"{_option}={_value!r}"] = (
            lambda option=_option, value=_value: task_embedding(TinyProbe(), _images(), _labels(), **{option: value}),
            f"{_option} must be",
        )


@pytest.mark.parametrize(("call", "message"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_inputs_are_refused_with_one_line_naming_the_argument(call, message):
    with pytest.raises(ConfigurationError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
