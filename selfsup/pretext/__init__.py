"""Batch operations of the pretext tasks: rotations, grid tiles, permutation sets, patch masks."""

from selfsup.pretext.patch_masking import random_patch_mask
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
    "random_patch_mask",
    "rotate_batch",
]
