"""Tiles of a 3x3 grid with a random gap and jitter, cut from a batch without Python loops.

Noroozi & Favaro 2016 (jigsaw) and Doersch et al. 2015 (relative position) both cut
tiles smaller than their grid cell at a random place inside it, so that no tile
continues its neighbour's edges or texture: the network must use content, not
low-level shortcuts. A cell is ``image_size // grid`` pixels wide (integer division:
for sizes not divisible by the grid, the last row and column of pixels are unused);
a tile is ``round(tile_fraction * cell)`` wide.
"""

import torch

# The 8 cells around the centre of a 3x3 grid, in row-major order: label l of the
# relative-position task is the cell NEIGHBOUR_CELLS[l] (0 = top-left ... 7 = bottom-right).
NEIGHBOUR_CELLS = (0, 1, 2, 3, 5, 6, 7, 8)


def tile_geometry(image_size: int, tile_fraction: float, grid: int = 3) -> tuple[int, int]:
    """``(cell, tile)`` sizes in pixels; raises if a tile would be empty or exceed its cell."""
    cell = image_size // grid
    tile = round(tile_fraction * cell)
    if not 0 < tile <= cell:
        raise ValueError(f"tile_fraction {tile_fraction} of a {cell}-pixel cell gives an unusable {tile}-pixel tile")
    return cell, tile


def grid_offsets(
    batch_size: int, image_size: int, tile_fraction: float, grid: int = 3, device=None, generator=None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Top-left corners ``(top, left)``, each ``(B, grid * grid)``, of one random tile per cell.

    Cells are numbered row-major. Returns the tile size as well.
    """
    cell, tile = tile_geometry(image_size, tile_fraction, grid)
    jitter = torch.randint(0, cell - tile + 1, (2, batch_size, grid * grid), device=device, generator=generator)
    index = torch.arange(grid * grid, device=device)
    top = (index // grid) * cell + jitter[0]
    left = (index % grid) * cell + jitter[1]
    return top, left, tile


def crop_tiles(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, tile: int) -> torch.Tensor:
    """Tiles ``(B, T, C, tile, tile)`` whose corners are ``top[b, t], left[b, t]`` in ``images[b]``."""
    steps = torch.arange(tile, device=images.device)
    rows = (top[..., None] + steps)[..., :, None]
    cols = (left[..., None] + steps)[..., None, :]
    batch = torch.arange(images.shape[0], device=images.device)[:, None, None, None]
    return images.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 1, 4, 2, 3)


def normalise_tiles(tiles: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Standardise every tile and channel on its own (zero mean, unit deviation)."""
    mean = tiles.mean(dim=(-2, -1), keepdim=True)
    std = tiles.std(dim=(-2, -1), keepdim=True)
    return (tiles - mean) / (std + eps)
