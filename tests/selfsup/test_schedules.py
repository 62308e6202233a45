"""Every schedule against its closed form at chosen steps."""

import math

import pytest

from selfsup.schedules import cosine_between, cosine_momentum, scaled_learning_rate, step_decay, warmup_cosine


def test_learning_rate_scaling_rules():
    assert scaled_learning_rate(0.3, 4096, "linear") == pytest.approx(4.8)
    assert scaled_learning_rate(0.075, 4096, "sqrt", reference_batch_size=1) == pytest.approx(4.8)
    assert scaled_learning_rate(0.3, 4096, "none") == 0.3
    with pytest.raises(ValueError):
        scaled_learning_rate(0.3, 256, "cubic")


def test_warmup_then_cosine():
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.5)
    assert warmup_cosine(110, 10, 110) == pytest.approx(0.0)
    assert warmup_cosine(110, 10, 110, final_fraction=0.1) == pytest.approx(0.1)
    assert warmup_cosine(35, 10, 110) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))


def test_cosine_momentum_rises_from_base_to_one():
    assert cosine_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert cosine_momentum(50, 100, 0.99) == pytest.approx(0.995)
    assert cosine_momentum(100, 100, 0.99) == pytest.approx(1.0)


def test_step_decay_divides_by_ten_at_sixty_and_eighty_percent():
    assert [step_decay(step, 100) for step in (0, 59, 60, 79, 80, 100)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert step_decay(5, 10, milestones=(0.5,), factor=0.5) == 0.5


def test_cosine_between_moves_from_start_to_end_either_way():
    assert cosine_between(0, 100, 0.04, 0.4) == pytest.approx(0.04)
    assert cosine_between(50, 100, 0.04, 0.4) == pytest.approx(0.22)  # half way: the mean
    assert cosine_between(100, 100, 0.04, 0.4) == cosine_between(500, 100, 0.04, 0.4) == pytest.approx(0.4)
    assert cosine_between(25, 100, 1.0, 0.0) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert cosine_between(30, 100, 0.99, 1.0) == pytest.approx(cosine_momentum(30, 100, 0.99))
