import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.errors import ConfigurationError
from selfsup.losses import NTXentLoss


def nt_xent_by_hand(z_a, z_b, temperature):
    """Eq. (6.14) written out: views ordered [a_0..a_{N-1}, b_0..b_{N-1}], positive of k is k +- N."""
    views = F.normalize(torch.cat([z_a, z_b]), dim=1)
    count = views.shape[0]
    half = count // 2
    total = 0.0
    for i in range(count):
        j = (i + half) % count
        numerator = math.exp(float(views[i] @ views[j]) / temperature)
        denominator = sum(math.exp(float(views[i] @ views[k]) / temperature) for k in range(count) if k != i)
        total += -math.log(numerator / denominator)
    return total / count


def test_matches_hand_computation_on_tiny_batch():
    z_a = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, -2.0]])
    z_b = torch.tensor([[0.9, 0.3], [0.2, 1.0], [-0.5, -1.0]])
    for temperature in (0.1, 0.5, 1.0):
        loss = NTXentLoss(temperature)(z_a, z_b)
        assert loss.item() == pytest.approx(nt_xent_by_hand(z_a, z_b, temperature), rel=1e-5)


@pytest.mark.parametrize("batch_size", [2, 5, 16])
def test_collinear_embeddings_give_log_of_2n_minus_1(batch_size):
    z = torch.ones(batch_size, 8) * torch.rand(batch_size, 1).add(0.1)
    loss = NTXentLoss(0.3)(z, z.clone())
    assert loss.item() == pytest.approx(math.log(2 * batch_size - 1), rel=1e-6)


def test_symmetric_in_the_two_views():
    torch.manual_seed(0)
    z_a, z_b = torch.randn(6, 4), torch.randn(6, 4)
    criterion = NTXentLoss(0.5)
    assert criterion(z_a, z_b).item() == pytest.approx(criterion(z_b, z_a).item(), rel=1e-6)


def test_perfect_alignment_beats_random_pairs():
    torch.manual_seed(0)
    z = torch.randn(32, 16)
    criterion = NTXentLoss(0.1)
    assert criterion(z, z.clone()) < criterion(z, torch.randn(32, 16))


def test_half_precision_at_low_temperature_stays_finite():
    torch.manual_seed(0)
    z_a, z_b = torch.randn(8, 16).half(), torch.randn(8, 16).half()
    loss = NTXentLoss(0.01)(z_a, z_b)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(nt_xent_by_hand(z_a.float(), z_b.float(), 0.01), rel=1e-3)


@pytest.mark.parametrize("temperature", [0.0, -0.5])
def test_non_positive_temperature_is_refused(temperature):
    with pytest.raises(ConfigurationError, match="temperature must be a finite number > 0"):
        NTXentLoss(temperature)


def test_single_image_batch_is_refused():
    with pytest.raises(ConfigurationError, match="at least 2 images"):
        NTXentLoss(0.5)(torch.randn(1, 4), torch.randn(1, 4))
