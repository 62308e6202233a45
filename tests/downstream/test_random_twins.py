"""The random baselines of the matrix's rows: one per architecture and input size, told apart when names clash."""

import torch

from downstream.representations import checkpoint_rows, random_init_rows
from tests.helpers import random_digits_backbone


def test_one_random_row_per_architecture_and_size(tmp_path):
    rows = checkpoint_rows(
        {"a": random_digits_backbone(tmp_path / "a.pt", 1), "b": random_digits_backbone(tmp_path / "b.pt", 2)}
    )
    assert [row.name for row in random_init_rows(rows)] == ["random init (small_conv, 16px)"]


def test_a_teacher_and_its_narrower_student_get_a_random_row_each(tmp_path):
    teacher = random_digits_backbone(tmp_path / "teacher.pt", 1, width=16)
    student = random_digits_backbone(tmp_path / "student.pt", 2, width=4)
    twins = random_init_rows(checkpoint_rows({"teacher": teacher, "student": student}))
    assert [twin.name for twin in twins] == [
        "random init (small_conv width=16, 16px)",
        "random init (small_conv width=4, 16px)",
    ]
    narrow = twins[1].network(0)
    assert narrow.stage_dims == (4, 8, 16, 32)
    assert torch.equal(next(narrow.parameters()), next(twins[1].network(0).parameters()))  # seeded
