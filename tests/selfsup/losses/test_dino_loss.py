"""DINO's loss and centre: a hand computation, the entropy minimum, the centre's EMA, the head's normalisation."""

import math

import pytest
import torch

from selfsup.components.dino_head import DINOHead
from selfsup.errors import ConfigurationError
from selfsup.losses.dino import DINOLoss


def _softmax(values, temperature):
    exps = [math.exp(v / temperature) for v in values]
    return [e / sum(exps) for e in exps]


def test_the_loss_equals_a_hand_computation_over_the_pairs_of_different_crops():
    teacher = [[[1.0, 0.0, -1.0]], [[0.0, 2.0, 0.0]]]  # 2 global crops, 1 image, K = 3
    student = [[[0.5, 0.5, 0.0]], [[1.0, -1.0, 0.0]], [[0.0, 0.0, 3.0]]]  # the 2 global crops and 1 local
    center, tau_t, tau_s = [0.2, -0.1, 0.3], 0.5, 0.1
    loss = DINOLoss(3, student_temperature=tau_s)
    loss.center.copy_(torch.tensor([center]))
    value = loss([torch.tensor(s) for s in student], [torch.tensor(t) for t in teacher], tau_t).item()
    total, pairs = 0.0, 0
    for g, t in enumerate(teacher):
        p = _softmax([a - c for a, c in zip(t[0], center)], tau_t)
        for v, s in enumerate(student):
            if v == g:
                continue
            log_q = [math.log(q) for q in _softmax(s[0], tau_s)]
            total += -sum(a * b for a, b in zip(p, log_q))
            pairs += 1
    assert pairs == 4 and value == pytest.approx(total / pairs, rel=1e-5)


def test_a_student_equal_to_the_centred_sharpened_teacher_reaches_the_teachers_entropy_the_minimum():
    torch.manual_seed(0)
    teacher = torch.randn(5, 8)
    loss = DINOLoss(8, student_temperature=0.1)
    loss.center.copy_(torch.randn(1, 8))
    tau_t = 0.04
    matched = (teacher - loss.center) * (0.1 / tau_t)  # softmax(s / tau_s) == softmax((t - C) / tau_t)
    target = torch.softmax((teacher - loss.center) / tau_t, dim=-1)
    entropy = -(target * target.clamp_min(1e-30).log()).sum(dim=-1).mean()
    # one global crop and one other crop: a single pair
    value = loss([teacher, matched], [teacher], tau_t)
    assert value.item() == pytest.approx(entropy.item(), rel=1e-4, abs=1e-6)
    for _ in range(5):
        assert loss([teacher, matched + torch.randn(5, 8)], [teacher], tau_t).item() > value.item()


def test_the_centre_moves_by_its_momentum_towards_the_mean_teacher_output_of_all_global_crops():
    loss = DINOLoss(3, center_momentum=0.9)
    loss.center.fill_(1.0)
    outputs = [torch.tensor([[0.0, 3.0, 6.0], [2.0, 1.0, 0.0]]), torch.tensor([[4.0, 0.0, 2.0], [2.0, 0.0, 0.0]])]
    loss.update_center(outputs)
    torch.testing.assert_close(loss.center, 0.9 + 0.1 * torch.tensor([[2.0, 1.0, 2.0]]))
    assert "center" in loss.state_dict()  # saved in checkpoints


def test_the_teacher_gets_no_gradient_and_the_student_does():
    student = [torch.randn(2, 4, requires_grad=True) for _ in range(2)]
    teacher = [torch.randn(2, 4, requires_grad=True) for _ in range(2)]
    DINOLoss(4)(student, teacher, 0.04).backward()
    assert all(t.grad is None for t in teacher) and all(s.grad.abs().sum() > 0 for s in student)


def test_the_heads_logits_are_cosines_to_unit_prototypes_when_the_last_layer_is_normalised():
    torch.manual_seed(0)
    head = DINOHead(16, output_dim=10, hidden_dim=32, bottleneck_dim=8)
    logits = head(torch.randn(4, 16) * 100)
    assert logits.abs().max() <= 1.0 + 1e-5
    magnitude = head.last_layer.parametrizations.weight.original0
    assert not magnitude.requires_grad and torch.equal(magnitude, torch.ones_like(magnitude))
    assert DINOHead(16, 10, 32, 8, norm_last_layer=False).last_layer.parametrizations.weight.original0.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"student_temperature": 0.0}, "student temperature must be a finite number > 0"),
        ({"student_temperature": float("nan")}, "student temperature must be a finite number > 0"),
        ({"center_momentum": 1.0}, "centre momentum must be in \\[0, 1\\)"),
        ({"center_momentum": -0.1}, "centre momentum must be in \\[0, 1\\)"),
    ],
)
def test_bad_settings_are_configuration_errors(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        DINOLoss(4, **kwargs)
