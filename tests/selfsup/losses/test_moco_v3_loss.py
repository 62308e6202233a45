"""MoCo v3's contrastive loss: a hand computation, the 2 tau scale, its bounds, and no gradient into the keys."""

import math

import pytest
import torch

from selfsup.errors import ConfigurationError
from selfsup.losses.moco_v3 import MoCoV3Loss


def _by_hand(queries, keys, temperature):
    """Plain Python: cosines, softmax over all keys, -log p(own key), mean, x 2 tau."""

    def unit(row):
        norm = math.sqrt(sum(v * v for v in row))
        return [v / norm for v in row]

    queries, keys = [unit(q) for q in queries], [unit(k) for k in keys]
    losses = []
    for i, q in enumerate(queries):
        logits = [sum(a * b for a, b in zip(q, k)) / temperature for k in keys]
        losses.append(-logits[i] + math.log(sum(math.exp(v) for v in logits)))
    return 2 * temperature * sum(losses) / len(losses)


def test_the_loss_equals_a_hand_computation():
    queries = [[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [-2.0, 0.0, 1.0]]
    keys = [[2.0, 1.0, 0.0], [0.0, -1.0, 2.0], [1.0, 1.0, 1.0]]
    for temperature in (0.2, 1.0):
        loss = MoCoV3Loss(temperature)(torch.tensor(queries), torch.tensor(keys))
        assert loss.item() == pytest.approx(_by_hand(queries, keys, temperature), rel=1e-6)


def test_queries_on_their_own_orthogonal_keys_give_the_closed_form_and_beat_queries_on_other_keys():
    """q_i = k_i, keys orthogonal: each cross-entropy is -1/tau + log(e^(1/tau) + N - 1)."""
    temperature, n = 0.2, 4
    keys = torch.eye(n)
    aligned = MoCoV3Loss(temperature)(keys * 3.0, keys)  # the queries' norm does not matter
    expected = 2 * temperature * (-1 / temperature + math.log(math.exp(1 / temperature) + n - 1))
    assert aligned.item() == pytest.approx(expected, rel=1e-6)
    shifted = MoCoV3Loss(temperature)(keys.roll(1, dims=0), keys)  # each query on another image's key
    assert shifted.item() == pytest.approx(expected + 2, rel=1e-6)  # the positive's logit falls by 1/tau


@pytest.mark.parametrize("temperature", [0.05, 0.2, 1.0])
def test_the_loss_stays_within_its_bounds(temperature):
    torch.manual_seed(1)
    n = 16
    for _ in range(10):
        loss = MoCoV3Loss(temperature)(torch.randn(n, 8), torch.randn(n, 8)).item()
        assert 0 <= loss <= 2 * temperature * (math.log(n) + 2 / temperature)


def test_only_the_queries_receive_a_gradient():
    queries = torch.randn(4, 6, requires_grad=True)
    keys = torch.randn(4, 6, requires_grad=True)
    MoCoV3Loss(0.2)(queries, keys).backward()
    assert keys.grad is None and queries.grad.abs().sum() > 0


@pytest.mark.parametrize("temperature", [0.0, -0.2, float("nan"), float("inf"), "0.2"])
def test_a_bad_temperature_is_one_configuration_error(temperature):
    with pytest.raises(ConfigurationError, match="MoCo v3's temperature must be a finite number > 0"):
        MoCoV3Loss(temperature)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match=r"queries \(4, 6\) and keys \(3, 6\) must be \(n, D\)"):
        MoCoV3Loss(0.2)(torch.ones(4, 6), torch.ones(3, 6))
