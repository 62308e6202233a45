import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.errors import ConfigurationError
from selfsup.losses import InfoNCELoss


def test_matches_hand_computation():
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    positives = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    negatives = torch.tensor([[-1.0, 0.0], [0.6, 0.8], [0.0, -3.0]])
    temperature = 0.5
    expected = 0.0
    for q, k in zip(F.normalize(queries, dim=1), F.normalize(positives, dim=1)):
        positive = math.exp(float(q @ k) / temperature)
        negative = sum(math.exp(float(q @ n) / temperature) for n in F.normalize(negatives, dim=1))
        expected += -math.log(positive / (positive + negative))
    loss = InfoNCELoss(temperature)(queries, positives, negatives)
    assert loss.item() == pytest.approx(expected / 2, rel=1e-6)


def test_indistinguishable_keys_give_log_of_queue_plus_one():
    queries = torch.ones(4, 3)
    assert InfoNCELoss(0.07)(queries, queries, torch.ones(9, 3)).item() == pytest.approx(math.log(10), rel=1e-6)


def test_non_positive_temperature_is_refused():
    with pytest.raises(ConfigurationError, match="temperature must be a finite number > 0"):
        InfoNCELoss(0.0)
