"""Leave-one-out kNN accuracy on seven unit vectors whose neighbours can be counted by hand."""

import numpy as np
import pytest

from downstream.transferability import knn_loo_accuracy

#: Angles in degrees: three A's near 0, then B's near 90 with an A intruder at 95.
ANGLES = np.array([0, 10, 25, 80, 90, 95, 105])
LABELS = np.array([0, 0, 0, 1, 1, 0, 1])


def unit_vectors(angles: np.ndarray) -> np.ndarray:
    radians = np.deg2rad(angles)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


@pytest.mark.parametrize(
    ("k", "correct"),
    [
        # 1-NN: the B's at 90 and 105 and the intruder at 95 are each nearest to the other class.
        (1, 4),
        # k=2: ties at 80 (B wins, 10 vs 15 degrees), 90 (A wins, 5 vs 10), 105 (A wins, 10 vs 15); 95 sees two B's.
        (2, 4),
        # k=3: only the intruder, surrounded by 90, 105 and 80, is wrong.
        (3, 6),
    ],
)
def test_majority_vote_counts_match_the_hand_count(k, correct):
    assert knn_loo_accuracy(unit_vectors(ANGLES), LABELS, k=k) == pytest.approx(correct / 7)


def test_ties_are_broken_by_similarity_not_by_the_class_numbering():
    """With k=2 a smallest-label tie-break would give A at 80 (wrong) and A at 90 and 105 whichever is A."""
    swapped = 1 - LABELS
    assert knn_loo_accuracy(unit_vectors(ANGLES), swapped, k=2) == pytest.approx(4 / 7)


def test_a_sharp_similarity_weighted_vote_follows_the_nearest_neighbour():
    """k=3 at temperature 0.01: the nearest neighbour outweighs the other two, as in 1-NN (4 of 7)."""
    features = unit_vectors(ANGLES)
    assert knn_loo_accuracy(features, LABELS, k=3, weighting="similarity", temperature=0.01) == pytest.approx(4 / 7)
    assert knn_loo_accuracy(features, LABELS, k=3, weighting="similarity", temperature=100.0) == pytest.approx(6 / 7)


def test_only_the_direction_of_a_feature_counts():
    scales = np.array([1.0, 7.0, 0.1, 3.0, 0.5, 20.0, 2.0])[:, None]
    assert knn_loo_accuracy(scales * unit_vectors(ANGLES), LABELS, k=1) == pytest.approx(4 / 7)


def test_the_sample_itself_is_not_its_own_neighbour():
    """Labels that alternate along a line of distinct directions: every neighbour has the other label."""
    angles = np.arange(6) * 15.0
    alternating = np.arange(6) % 2
    assert knn_loo_accuracy(unit_vectors(angles), alternating, k=1) == 0.0
