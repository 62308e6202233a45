"""BYOL's normalised MSE: a hand computation, its range, its minimum, and no gradient into the target."""

import math

import pytest
import torch

from selfsup.losses.byol import normalized_mse


def test_the_loss_equals_a_hand_computation():
    predictions = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    targets = torch.tensor([[1.0, 1.0], [0.0, -3.0], [4.0, -3.0]])
    # cosines: 1/sqrt(2) (45 degrees), -1 (opposite), 0 (orthogonal) -> 2 - 2 cos
    expected = ((2 - math.sqrt(2)) + 4 + 2) / 3
    assert normalized_mse(predictions, targets).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("scale", [1e-30, 1e-3, 1.0, 1e3, 1e30], ids=["tiny", "small", "unit", "large", "huge"])
def test_vectors_pointing_the_same_way_give_the_minimum_zero_at_any_norm(scale):
    torch.manual_seed(0)
    predictions = torch.randn(8, 16)
    assert normalized_mse(predictions * scale, predictions * 7.0).item() == pytest.approx(0.0, abs=1e-6)
    assert normalized_mse(predictions * scale, -predictions).item() == pytest.approx(4.0, abs=1e-6)


def test_the_loss_stays_in_zero_to_four_and_a_zero_row_counts_as_orthogonal():
    torch.manual_seed(1)
    values = [normalized_mse(torch.randn(32, 4), torch.randn(32, 4)).item() for _ in range(20)]
    assert all(0 <= value <= 4 for value in values)
    assert normalized_mse(torch.zeros(1, 3), torch.ones(1, 3)).item() == pytest.approx(2.0)


def test_only_the_prediction_receives_a_gradient_and_it_points_towards_the_target():
    predictions = torch.tensor([[1.0, 0.0]], requires_grad=True)
    targets = torch.tensor([[0.0, 1.0]], requires_grad=True)
    normalized_mse(predictions, targets).backward()
    assert targets.grad is None
    assert predictions.grad[0, 1] < 0  # descending the gradient turns p towards the target
    assert predictions.grad[0, 0] == pytest.approx(0.0, abs=1e-7)  # the norm's direction gets none


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match=r"predictions \(2, 3\) and targets \(2, 4\) must be \(N, D\)"):
        normalized_mse(torch.ones(2, 3), torch.ones(2, 4))
