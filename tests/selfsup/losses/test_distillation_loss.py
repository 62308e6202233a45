"""Distillation losses: hand computations, their minima, no gradient into the teacher, non-finite inputs, shapes."""

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.losses.distillation import feature_regression, seed_loss


def _softmax(logits: list[float]) -> list[float]:
    exps = [math.exp(x - max(logits)) for x in logits]
    return [e / sum(exps) for e in exps]


def test_feature_regression_equals_a_hand_computation():
    student = torch.tensor([[3.0, 4.0], [1.0, 0.0], [1.0, 1.0]])
    teacher = torch.tensor([[6.0, 8.0], [0.0, 2.0], [5.0, 0.0]])
    # cosines 1 (same direction), 0 (orthogonal), 1/sqrt(2) -> ||s/|s| - t/|t|||^2 = 2 - 2 cos
    expected = (0.0 + 2.0 + (2 - math.sqrt(2))) / 3
    assert feature_regression(student, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_feature_regression_is_zero_exactly_when_the_normalised_vectors_are_equal():
    torch.manual_seed(0)
    teacher = torch.randn(8, 16)
    assert feature_regression(teacher * 3.0, teacher).item() == pytest.approx(0.0, abs=1e-6)
    other = teacher.clone()
    other[0] = torch.randn(16)  # one row turned elsewhere
    assert feature_regression(other, teacher).item() > 1e-3
    assert feature_regression(-teacher, teacher).item() == pytest.approx(4.0, abs=1e-6)


@pytest.mark.parametrize(("a", "b"), [(1e-20, 1.0), (1e-3, 1e3), (7.0, 1e20)])
def test_feature_regression_is_invariant_to_positive_scaling(a, b):
    torch.manual_seed(1)
    student, teacher = torch.randn(6, 5), torch.randn(6, 5)
    expected = feature_regression(student, teacher).item()
    assert feature_regression(a * student, b * teacher).item() == pytest.approx(expected, rel=1e-5)


def test_seed_equals_a_hand_computation():
    student = torch.tensor([[3.0, 4.0], [0.0, -2.0]])  # unit rows (0.6, 0.8) and (0, -1)
    teacher = torch.tensor([[2.0, 0.0], [0.0, 1.0]])  # unit rows (1, 0) and (0, 1)
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    tau_s, tau_t = 0.5, 0.25
    # image 1, keys [t1; queue] = (1, 0), (0, 1), (-1, 0); image 2, keys (0, 1), (0, 1), (-1, 0)
    teacher_logits = [[1 / tau_t, 0.0, -1 / tau_t], [1 / tau_t, 1 / tau_t, 0.0]]
    student_logits = [[0.6 / tau_s, 0.8 / tau_s, -0.6 / tau_s], [-1 / tau_s, -1 / tau_s, 0.0]]
    losses = []
    for t_row, s_row in zip(teacher_logits, student_logits):
        p_t, p_s = _softmax(t_row), _softmax(s_row)
        losses.append(-sum(p * math.log(q) for p, q in zip(p_t, p_s)))
    expected = sum(losses) / 2
    assert seed_loss(student, teacher, queue, tau_s, tau_t).item() == pytest.approx(expected, rel=1e-6)


def test_seed_at_equal_temperatures_is_smallest_when_the_student_is_the_teacher():
    """H(p^T, p^S) >= H(p^T): equality, and a zero gradient, when the student's similarities are the teacher's."""
    torch.manual_seed(2)
    teacher = F.normalize(torch.randn(4, 8), dim=1)
    queue = F.normalize(torch.randn(16, 8), dim=1)
    student = teacher.clone().requires_grad_(True)
    minimum = seed_loss(student, teacher, queue, 0.1, 0.1)
    minimum.backward()
    p_t = F.softmax(torch.cat([torch.ones(4, 1), teacher @ queue.T], dim=1) / 0.1, dim=1)
    entropy = -(p_t * p_t.log()).sum(dim=1).mean()
    assert minimum.item() == pytest.approx(entropy.item(), rel=1e-5)
    assert student.grad.abs().max().item() < 1e-5
    for _ in range(10):
        moved = teacher + 0.3 * torch.randn(4, 8)
        assert seed_loss(moved, teacher, queue, 0.1, 0.1).item() > minimum.item()


def test_seed_with_a_cold_teacher_is_info_nce_with_the_teachers_embedding_as_positive():
    """SEED's tau_T = 1e-4: p^T is all but one-hot on the image's own teacher embedding."""
    torch.manual_seed(3)
    student, teacher = torch.randn(5, 8), torch.randn(5, 8)
    queue = F.normalize(torch.randn(32, 8), dim=1)
    s, t = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    logits = torch.cat([(s * t).sum(dim=1, keepdim=True), s @ queue.T], dim=1) / 0.2
    info_nce = F.cross_entropy(logits, torch.zeros(5, dtype=torch.long))
    assert seed_loss(student, teacher, queue).item() == pytest.approx(info_nce.item(), rel=1e-5)


def test_seed_is_computed_in_float32_under_autocast():
    torch.manual_seed(4)
    student, teacher, queue = torch.randn(4, 8), torch.randn(4, 8), F.normalize(torch.randn(8, 8), dim=1)
    expected = seed_loss(student, teacher, queue, 0.2, 1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(seed_loss(student, teacher, queue, 0.2, 1e-3), expected)


@pytest.mark.parametrize("loss", ["feature_regression", "seed"])
def test_only_the_student_receives_a_gradient(loss):
    torch.manual_seed(5)
    student = torch.randn(4, 6, requires_grad=True)
    teacher = torch.randn(4, 6, requires_grad=True)
    queue = F.normalize(torch.randn(8, 6), dim=1).requires_grad_(True)
    value = feature_regression(student, teacher) if loss == "feature_regression" else seed_loss(student, teacher, queue)
    value.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None and queue.grad is None


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", ["student", "teacher"])
def test_a_non_finite_entry_makes_the_loss_nan_for_the_shells_guard(bad, where):
    torch.manual_seed(6)
    inputs = {"student": torch.randn(3, 4), "teacher": torch.randn(3, 4)}
    inputs[where][1, 2] = bad
    queue = F.normalize(torch.randn(6, 4), dim=1)
    assert torch.isnan(feature_regression(inputs["student"], inputs["teacher"]))
    assert torch.isnan(seed_loss(inputs["student"], inputs["teacher"], queue))


def test_a_zero_row_has_no_direction_and_keeps_the_losses_finite():
    student, teacher = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    assert feature_regression(student, teacher).item() == pytest.approx(2.0)  # orthogonal to everything
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    p_t = _softmax([1.0 / 1e-4, 0.0, -1.0 / 1e-4])
    uniform = -sum(p * math.log(1 / 3) for p in p_t)  # every student logit 0: p^S uniform
    assert seed_loss(student, teacher, queue).item() == pytest.approx(uniform, rel=1e-6)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match=r"student \(2, 3\) and teacher \(2, 4\) embeddings must both be \(N, D\)"):
        feature_regression(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"student \(3,\) and teacher \(3,\)"):
        seed_loss(torch.ones(3), torch.ones(3), torch.ones(4, 3))
    with pytest.raises(ValueError, match=r"the queue \(4, 5\) must be \(K, 3\)"):
        seed_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(4, 5))


@pytest.mark.parametrize("temperature", [0.0, -0.1, float("nan"), float("inf")])
def test_temperatures_must_be_finite_and_positive(temperature):
    student = teacher = torch.ones(2, 3)
    with pytest.raises(ValueError, match="student temperature must be a finite number > 0"):
        seed_loss(student, teacher, torch.ones(4, 3), student_temperature=temperature)
    with pytest.raises(ValueError, match="teacher temperature must be a finite number > 0"):
        seed_loss(student, teacher, torch.ones(4, 3), teacher_temperature=temperature)
