"""Geometry of the pretext tasks: rotations, tile coordinates, permutation sets, neighbour labels."""

import pytest
import torch

from selfsup.pretext import (
    NEIGHBOUR_CELLS,
    crop_tiles,
    grid_offsets,
    hamming_permutation_set,
    minimum_hamming_distance,
    normalise_tiles,
    rotate_batch,
)
from selfsup.pretext.tiles import tile_geometry


def coordinate_image(size: int, batch: int = 2) -> torch.Tensor:
    """Channel 0 holds each pixel's row, channel 1 its column, channel 2 the batch index."""
    rows = torch.arange(size).view(size, 1).expand(size, size)
    cols = torch.arange(size).view(1, size).expand(size, size)
    return torch.stack([torch.stack([rows, cols, torch.full_like(rows, b)]) for b in range(batch)]).float()


def test_rotation_labels_agree_with_torch_rot90():
    images = torch.randn(3, 2, 5, 5)
    rotated, labels = rotate_batch(images)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for index, k in enumerate(labels.tolist()):
        assert torch.equal(rotated[index], torch.rot90(images[index % 3], k, dims=(1, 2)))


def test_rotation_by_one_is_a_counter_clockwise_quarter_turn():
    image = torch.zeros(1, 1, 4, 4)
    image[0, 0, 0, 3] = 1.0  # top-right corner
    rotated, _ = rotate_batch(image)
    assert rotated[1, 0, 0, 0] == 1.0  # a counter-clockwise turn takes top-right to top-left
    assert rotated[2, 0, 3, 0] == 1.0 and rotated[3, 0, 3, 3] == 1.0


def test_rotation_refuses_non_square_images():
    with pytest.raises(ValueError, match="square"):
        rotate_batch(torch.zeros(1, 3, 4, 5))


@pytest.mark.parametrize("size", [36, 31, 29])
def test_jigsaw_tiles_land_at_the_intended_pixels(size):
    images = coordinate_image(size)
    generator = torch.Generator().manual_seed(0)
    top, left, tile = grid_offsets(2, size, tile_fraction=0.7, generator=generator)
    cell = size // 3
    assert tile == round(0.7 * cell)
    tiles = crop_tiles(images, top, left, tile)
    assert tiles.shape == (2, 9, 3, tile, tile)
    for b in range(2):
        for t in range(9):
            row, col = divmod(t, 3)
            y, x = int(top[b, t]), int(left[b, t])
            assert row * cell <= y and y + tile <= (row + 1) * cell  # inside its own cell
            assert col * cell <= x and x + tile <= (col + 1) * cell
            expected_rows = torch.arange(y, y + tile).view(tile, 1).expand(tile, tile).float()
            expected_cols = torch.arange(x, x + tile).view(1, tile).expand(tile, tile).float()
            assert torch.equal(tiles[b, t, 0], expected_rows)
            assert torch.equal(tiles[b, t, 1], expected_cols)
            assert (tiles[b, t, 2] == b).all()


def test_tile_jitter_covers_the_whole_gap():
    top, left, tile = grid_offsets(2000, 36, tile_fraction=0.75)
    cell = 12
    assert tile == 9
    offsets = torch.cat([top[:, 0], left[:, 0]])
    assert set(offsets.tolist()) == set(range(cell - tile + 1))


def test_tile_geometry_refuses_empty_tiles():
    with pytest.raises(ValueError, match="unusable"):
        tile_geometry(6, 0.1)


def test_tiles_are_standardised_per_tile_and_channel():
    tiles = normalise_tiles(torch.rand(2, 9, 3, 5, 5) * 7 + 3)
    torch.testing.assert_close(tiles.mean(dim=(-2, -1)), torch.zeros(2, 9, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(tiles.std(dim=(-2, -1)), torch.ones(2, 9, 3), atol=1e-3, rtol=0)


@pytest.mark.parametrize("count, expected_min_distance", [(10, 8), (100, 6)])
def test_permutation_set_is_unique_deterministic_and_far_apart(count, expected_min_distance):
    permutations = hamming_permutation_set(count, seed=3)
    assert permutations.shape == (count, 9)
    assert all(sorted(p) == list(range(9)) for p in permutations.tolist())
    assert len({tuple(p) for p in permutations.tolist()}) == count
    assert torch.equal(permutations, hamming_permutation_set(count, seed=3))
    assert not torch.equal(permutations, hamming_permutation_set(count, seed=4))
    assert minimum_hamming_distance(permutations) == expected_min_distance


def test_minimum_hamming_distance_by_hand():
    permutations = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 0, 1]])
    assert minimum_hamming_distance(permutations) == 2  # the first two differ in two places


def test_relative_position_labels_match_the_neighbour_geometry():
    size, cell = 30, 10
    images = coordinate_image(size, batch=1)
    top, left, tile = grid_offsets(1, size, tile_fraction=1.0)  # no jitter: tiles fill their cells
    centre = crop_tiles(images, top[:, [4]], left[:, [4]], tile)[0, 0]
    directions = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    for label, (dy, dx) in enumerate(directions):
        cell_index = NEIGHBOUR_CELLS[label]
        neighbour = crop_tiles(images, top[:, [cell_index]], left[:, [cell_index]], tile)[0, 0]
        assert neighbour[0, 0, 0] - centre[0, 0, 0] == dy * cell
        assert neighbour[1, 0, 0] - centre[1, 0, 0] == dx * cell
