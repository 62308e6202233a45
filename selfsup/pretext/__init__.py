"""Batch operations of the pretext tasks: rotations, grid tiles, permutation sets."""

from selfsup.pretext.permutations import hamming_permutation_set, minimum_hamming_distance
from selfsup.pretext.rotations import rotate_batch
from selfsup.pretext.tiles import NEIGHBOUR_CELLS, crop_tiles, grid_offsets, normalise_tiles

__all__ = [
    "NEIGHBOUR_CELLS",
    "crop_tiles",
    "grid_offsets",
    "hamming_permutation_set",
    "minimum_hamming_distance",
    "normalise_tiles",
    "rotate_batch",
]
