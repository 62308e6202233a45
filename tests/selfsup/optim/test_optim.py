import torch
from torch import nn

from selfsup.optim import LARS, decay_groups


def test_biases_and_norms_are_excluded_from_decay():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    decayed, excluded = decay_groups(model, weight_decay=0.1)
    assert {p.ndim for p in decayed["params"]} == {2, 4}
    assert len(excluded["params"]) == 4 and excluded["weight_decay"] == 0.0 and excluded["exclude_from_lars"]


def test_lars_step_uses_the_trust_ratio():
    weight = nn.Parameter(torch.tensor([3.0, 4.0]))
    weight.grad = torch.tensor([0.6, 0.8])
    LARS([weight], lr=0.5, momentum=0.9, weight_decay=0.0, eta=0.01).step()
    trust = 0.01 * 5.0 / 1.0
    torch.testing.assert_close(weight.data, torch.tensor([3.0, 4.0]) - 0.5 * trust * torch.tensor([0.6, 0.8]))


def test_lars_excluded_group_is_plain_sgd():
    bias = nn.Parameter(torch.tensor([1.0, -1.0]))
    bias.grad = torch.tensor([0.2, 0.4])
    LARS([{"params": [bias], "exclude_from_lars": True}], lr=0.5, weight_decay=0.1).step()
    torch.testing.assert_close(bias.data, torch.tensor([1.0, -1.0]) - 0.5 * torch.tensor([0.3, 0.3]))
