"""The random baselines of the matrix's rows: one per architecture and input size, told apart when names clash."""

import torch

from downstream.representations import checkpoint_rows, random_init_rows
from selfsup.classical.dictionary import SparseCodingEncoder, save_dictionary
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


def _dictionary(path, n_atoms: int, stride: int) -> str:
    atoms = torch.nn.functional.normalize(torch.randn(n_atoms, 3 * 36, generator=torch.Generator().manual_seed(0)))
    encoder = SparseCodingEncoder(atoms, patch_size=6, stride=stride, sparsity=0.5, pool_grid=2, image_size=16)
    save_dictionary(path, encoder, (0.19,) * 3, (0.32,) * 3)
    return str(path)


def test_dictionaries_of_other_coding_settings_get_a_random_row_each(tmp_path):
    rows = checkpoint_rows({"a": _dictionary(tmp_path / "a.pt", 8, 2), "b": _dictionary(tmp_path / "b.pt", 8, 5)})
    assert [twin.name for twin in random_init_rows(rows)] == [
        "random init (dictionary, 8 atoms of 6x6, stride 2, sparsity 0.5, pool 2, 16px)",
        "random init (dictionary, 8 atoms of 6x6, stride 5, sparsity 0.5, pool 2, 16px)",
    ]


def test_a_random_dictionary_row_is_fingerprinted_by_its_atom_count(tmp_path):
    """Another n_atoms is another baseline: its cached values must not be reused."""
    small, large = (checkpoint_rows({"d": _dictionary(tmp_path / f"{n}.pt", n, 2)})[0].random_twin() for n in (8, 16))
    assert small.source != large.source and small.source["n_atoms"] == 8
