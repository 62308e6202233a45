"""The pieces of MoCo on their own: key queue, momentum update, split batch norm."""

import copy

import pytest
import torch
from torch import nn

from selfsup.components.ema import ema_update
from selfsup.components.key_queue import KeyQueue
from selfsup.components.split_batch_norm import SplitBatchNorm2d, use_split_batch_norm


def test_queue_is_first_in_first_out_and_wraps():
    queue = KeyQueue(size=6, dim=2)
    initial = queue.keys.clone()
    queue.enqueue(torch.full((3, 2), 1.0))
    assert int(queue.pointer) == 3
    assert torch.equal(queue.keys[:3], torch.ones(3, 2)) and torch.equal(queue.keys[3:], initial[3:])
    queue.enqueue(torch.full((3, 2), 2.0))
    queue.enqueue(torch.full((3, 2), 3.0))
    assert int(queue.pointer) == 3
    assert torch.equal(queue.keys[:3], torch.full((3, 2), 3.0)) and torch.equal(queue.keys[3:], torch.full((3, 2), 2.0))


def test_queue_and_pointer_are_saved_in_the_state_dict():
    queue = KeyQueue(size=4, dim=3)
    queue.enqueue(torch.ones(2, 3))
    restored = KeyQueue(size=4, dim=3)
    restored.load_state_dict(queue.state_dict())
    assert set(queue.state_dict()) == {"keys", "pointer"}
    assert torch.equal(restored.keys, queue.keys) and int(restored.pointer) == 2


def test_queue_refuses_a_key_count_that_does_not_divide_it():
    with pytest.raises(ValueError, match="not a multiple"):
        KeyQueue(size=10, dim=2).enqueue(torch.ones(3, 2))


def test_ema_update_is_m_times_target_plus_one_minus_m_times_online():
    target, online = nn.Linear(3, 2), nn.Linear(3, 2)
    expected = [0.9 * t.detach() + 0.1 * o.detach() for t, o in zip(target.parameters(), online.parameters())]
    ema_update(target, online, 0.9)
    for param, value in zip(target.parameters(), expected):
        torch.testing.assert_close(param.detach(), value)


def test_ema_update_copies_a_frozen_online_parameter_exactly():
    torch.manual_seed(0)
    online = nn.Linear(3, 2)
    target = copy.deepcopy(online)
    online.bias.requires_grad_(False)
    with torch.no_grad():
        online.weight.add_(1.0)
    for _ in range(5):
        ema_update(target, online, 0.3)
    assert torch.equal(target.bias, online.bias)  # averaging equal values would drift by rounding
    assert not torch.equal(target.weight, online.weight)


def test_split_batch_norm_normalises_each_interleaved_group_on_its_own():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4) * torch.arange(1, 9).view(8, 1, 1, 1)
    split = SplitBatchNorm2d(3, num_splits=2)
    with torch.no_grad():
        split.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        split.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    reference = nn.BatchNorm2d(3)
    reference.load_state_dict(split.state_dict())
    out = split(x)
    for group in (0, 1):
        torch.testing.assert_close(out[group::2], reference(x[group::2]))
    group_means = torch.stack([x[g::2].mean(dim=(0, 2, 3)) for g in (0, 1)]).mean(dim=0)
    torch.testing.assert_close(split.running_mean, 0.1 * group_means)


def test_split_batch_norm_in_eval_mode_is_ordinary_batch_norm():
    model = use_split_batch_norm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), num_splits=4)
    assert isinstance(model[1], SplitBatchNorm2d)
    model(torch.randn(8, 3, 6, 6))
    reference = nn.BatchNorm2d(4).eval()
    reference.load_state_dict(model[1].state_dict())
    x = torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(model[1].eval()(x), reference(x))
