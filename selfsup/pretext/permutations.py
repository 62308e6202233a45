"""The jigsaw's permutation set: chosen greedily for maximal Hamming distance.

Noroozi & Favaro 2016, Algorithm 1 (the "maximal" variant): start from a random
permutation of the 9 tiles, then repeatedly add, among all 9! permutations, one whose
smallest Hamming distance to the permutations chosen so far is largest (ties broken
at random). The set is a deterministic function of ``(count, seed)``.
"""

import itertools
from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def _all_permutations(num_tiles: int) -> torch.Tensor:
    return torch.tensor(list(itertools.permutations(range(num_tiles))), dtype=torch.uint8)


def hamming_permutation_set(count: int, seed: int = 0, num_tiles: int = 9) -> torch.Tensor:
    """``(count, num_tiles)`` distinct permutations, as long integers."""
    candidates = _all_permutations(num_tiles)
    if not 1 <= count <= len(candidates):
        raise ValueError(f"the permutation set size must lie in [1, {len(candidates)}], got {count}")
    generator = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(len(candidates), (1,), generator=generator))]
    distance_to_set = (candidates != candidates[chosen[0]]).sum(dim=1)
    for _ in range(count - 1):
        farthest = (distance_to_set == distance_to_set.max()).nonzero().flatten()
        pick = int(farthest[torch.randint(len(farthest), (1,), generator=generator)])
        chosen.append(pick)
        distance_to_set = torch.minimum(distance_to_set, (candidates != candidates[pick]).sum(dim=1))
    return candidates[chosen].long()


def minimum_hamming_distance(permutations: torch.Tensor) -> int:
    """The smallest Hamming distance between two distinct members of the set."""
    distances = (permutations[:, None, :] != permutations[None, :, :]).sum(dim=-1)
    distances.fill_diagonal_(permutations.shape[1] + 1)
    return int(distances.min())
