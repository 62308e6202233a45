"""Self-taught learning with a sparse dictionary (Raina et al., ICML 2007; textbook §6.1.1-6.1.2).

    learn:   min_{D, u_i}  sum_i 1/2 ||x_i - D u_i||^2 + lambda ||u_i||_1   s.t. ||d_k|| <= 1
             on patches x_i of unlabelled source images        (scikit-learn's MiniBatchDictionaryLearning)
    encode:  u = argmin_u 1/2 ||x - D u||^2 + lambda ||u||_1 for every patch of a target image
                                                                 (scikit-learn's sparse_encode)
    pool:    the codes' positive and negative parts, averaged over each cell of a grid x grid
             partition of the image, flattened to one vector (Coates, Lee, Ng, AISTATS 2011, §3.2)

Every patch is centred on its own mean first (its brightness is not part of its shape). The
textbook's constraint is ||d_k|| = 1; scikit-learn solves its convex relaxation ||d_k|| <= 1,
at whose optimum every used atom has norm 1 (a shorter atom would need larger, costlier codes).

The encoder is a one-stage network for the evaluation matrix: kNN, linear probes, LogME and
the transferability scores read its features like a backbone's. It has no gradient and
nothing to fine-tune. The dictionary file (:data:`DICTIONARY_FORMAT`) holds the atoms, the
coding settings and the input format the atoms were learned at.
"""

import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import DictionaryLearning, MiniBatchDictionaryLearning, sparse_encode
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from selfsup.checkpoints import atomic_save
from selfsup.errors import ConfigurationError, is_finite, is_integer, require, require_sizes

DICTIONARY_FORMAT = "selfsup-dictionary/1"
#: Coordinate-descent sweeps of the coding solver: scikit-learn's 1000 leave some patches short of its tolerance.
CODING_ITERATIONS = 10_000


def image_patches(images: torch.Tensor, patch_size: int, stride: int) -> torch.Tensor:
    """``(N, C, H, W)`` images -> ``(N, rows, cols, C * patch_size**2)`` patches, each centred on its mean."""
    patches = images.unfold(2, patch_size, stride).unfold(3, patch_size, stride)
    patches = patches.permute(0, 2, 3, 1, 4, 5).flatten(3)
    return patches - patches.mean(dim=3, keepdim=True)


def learn_atoms(
    patches: np.ndarray,
    n_atoms: int,
    sparsity: float,
    epochs: int,
    seed: int,
    learner: str = "batch",
    start: np.ndarray | None = None,
) -> np.ndarray:
    """The ``(n_atoms, patch_dim)`` dictionary of ``patches`` (one per row), unit-norm rows (eq. 6.1).

    The atoms start as ``start`` when given (SDL starts both domains from the same pairs), else
    as ``n_atoms`` distinct non-zero patches drawn by ``seed``, normalised. ``batch``
    alternates exact coding of every patch and a dictionary update, ``epochs`` times
    (scikit-learn's ``DictionaryLearning``; it recovers planted atoms where the online
    learner from the same start does not); ``online`` takes mini-batch steps over the patches,
    ``epochs`` passes (``MiniBatchDictionaryLearning``, Mairal et al. 2009): many times faster on
    the millions of patches of a large folder. A mini-batch step codes its batch only
    approximately by design; the solver's warnings that some of those codes stopped short of
    its tolerance are silenced.
    """
    if start is None:
        candidates = np.flatnonzero(np.linalg.norm(patches, axis=1) > 1e-8)
        if len(candidates) < n_atoms:
            raise ConfigurationError(
                f"{len(candidates)} non-constant patches cannot start {n_atoms} atoms: give more images or fewer atoms."
            )
        start = patches[np.random.default_rng(seed).choice(candidates, n_atoms, replace=False)]
        start = start / np.linalg.norm(start, axis=1, keepdims=True)
    common = dict(n_components=n_atoms, alpha=sparsity, fit_algorithm="cd", random_state=seed, dict_init=start)
    if learner == "batch":
        model = DictionaryLearning(**common, max_iter=epochs, code_init=np.zeros((len(patches), n_atoms)))
    elif learner == "online":
        model = MiniBatchDictionaryLearning(**common, max_iter=epochs, batch_size=256)
    else:
        raise ConfigurationError(f"learner must be 'batch' or 'online', got {learner!r}.")
    model.set_params(transform_algorithm="lasso_cd", transform_max_iter=CODING_ITERATIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(patches).components_


def sparse_code(patches: np.ndarray, atoms: np.ndarray, sparsity: float) -> np.ndarray:
    """argmin_u 1/2 ||x - u D||^2 + sparsity ||u||_1 for every row x of ``patches`` (rows of D: the atoms)."""
    return sparse_encode(patches, atoms, algorithm="lasso_cd", alpha=sparsity, max_iter=CODING_ITERATIONS)


class SparseCodingEncoder(nn.Module):
    """Images -> pooled sparse codes of their patches, as a one-stage network (see the module docstring).

    Args:
        atoms: ``(n_atoms, channels * patch_size**2)``, one atom per row.
        patch_size, stride: the patches coded, on a dense grid.
        sparsity: lambda of the coding problem.
        pool_grid: the codes are averaged over ``pool_grid x pool_grid`` cells of the image.
        image_size, channels: the images the encoder takes.
    """

    def __init__(
        self,
        atoms: torch.Tensor,
        patch_size: int,
        stride: int,
        sparsity: float,
        pool_grid: int,
        image_size: int,
        channels: int = 3,
    ) -> None:
        super().__init__()
        check_coding(patch_size, stride, sparsity, pool_grid, image_size)
        require(is_integer(channels) and channels >= 1, "channels", channels, "an integer >= 1")
        if atoms.ndim != 2 or atoms.shape[1] != channels * patch_size**2 or not atoms.shape[0]:
            raise ConfigurationError(
                f"the atoms must be (n_atoms, {channels * patch_size**2}) for {channels}-channel "
                f"{patch_size}x{patch_size} patches, got {tuple(atoms.shape)}."
            )
        if not torch.isfinite(atoms).all():
            raise ConfigurationError("the atoms hold NaN or infinite values: learn the dictionary again.")
        # Not a buffer: a half-precision Trainer converts buffers, and the coding needs float64 on the host.
        self.atoms = atoms.detach().to("cpu", torch.float64).clone()
        self.patch_size, self.stride, self.sparsity = patch_size, stride, sparsity
        self.pool_grid, self.image_size, self.channels = pool_grid, image_size, channels
        self.feature_dim = 2 * atoms.shape[0] * pool_grid**2
        self.stage_dims = (self.feature_dim,)

    @property
    def n_atoms(self) -> int:
        return self.atoms.shape[0]

    def codes(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 2 * n_atoms, rows, cols)``: the positive and the negative part of every patch's code."""
        expected = (self.channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ConfigurationError(
                f"the dictionary codes {expected} images, got {tuple(images.shape)}: evaluate it at the input "
                "size it was learned at (its file records it)."
            )
        patches = image_patches(images.detach().to(torch.float64), self.patch_size, self.stride)
        n, rows, cols, dim = patches.shape
        flat = patches.reshape(-1, dim).cpu().numpy()
        codes = sparse_code(flat, self.atoms.numpy(), self.sparsity)
        codes = torch.from_numpy(codes).to(images.device).reshape(n, rows, cols, -1).permute(0, 3, 1, 2)
        return torch.cat([codes.clamp(min=0), (-codes).clamp(min=0)], dim=1)

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        pooled = F.adaptive_avg_pool2d(self.codes(images), self.pool_grid).flatten(1)
        return [pooled.to(images.dtype)[:, :, None, None]]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(images)[-1].flatten(1)

    def settings(self) -> dict:
        """The constructor's arguments besides the atoms: what a dictionary file records."""
        return {
            "patch_size": self.patch_size,
            "stride": self.stride,
            "sparsity": self.sparsity,
            "pool_grid": self.pool_grid,
            "image_size": self.image_size,
            "channels": self.channels,
        }


def check_coding(patch_size, stride, sparsity, pool_grid, image_size, key: str = "") -> None:
    """Refuse coding settings that give no patch, no code or fewer patch rows than pooling cells."""
    require_sizes(key, patch_size=patch_size, stride=stride, pool_grid=pool_grid)
    require(is_integer(image_size) and image_size >= 1, key + "image_size", image_size, "an integer >= 1 (pixels)")
    require(
        image_size >= patch_size,
        key + "patch_size",
        patch_size,
        f"at most the image size {image_size}",
    )
    require(is_finite(sparsity) and sparsity > 0, key + "sparsity", sparsity, "a finite number > 0 (lambda)")
    rows = (image_size - patch_size) // stride + 1
    require(
        rows >= pool_grid,
        key + "pool_grid",
        pool_grid,
        f"at most the {rows} patch rows of {image_size}px images at patch_size {patch_size}, stride {stride}",
    )


def random_encoder(like: SparseCodingEncoder, seed: int) -> SparseCodingEncoder:
    """An encoder of ``like``'s settings with random unit-norm atoms: what the coding pipeline gives alone."""
    generator = torch.Generator().manual_seed(seed)
    atoms = F.normalize(torch.randn(like.atoms.shape, generator=generator, dtype=torch.float64), dim=1)
    return SparseCodingEncoder(atoms, **like.settings())


def save_dictionary(path: str | Path, encoder: SparseCodingEncoder, mean, std, **provenance) -> None:
    """Write ``encoder`` and the normalisation its images had, atomically."""
    payload = {
        "format": DICTIONARY_FORMAT,
        "atoms": encoder.atoms.cpu(),
        **encoder.settings(),
        "mean": [float(value) for value in mean],
        "std": [float(value) for value in std],
        "provenance": provenance,
    }
    atomic_save(payload, path)


def is_dictionary(payload) -> bool:
    return isinstance(payload, dict) and payload.get("format") == DICTIONARY_FORMAT


def dictionary_from(payload: dict, path) -> tuple[SparseCodingEncoder, dict]:
    """The encoder of a dictionary file's ``payload`` and its input format; every flaw one error."""
    settings = ("patch_size", "stride", "sparsity", "pool_grid", "image_size", "channels")
    missing = [name for name in ("atoms", "mean", "std", *settings) if name not in payload]
    if missing:
        raise ConfigurationError(f"{path} is a damaged dictionary file (no {missing}): learn it again.")
    atoms, mean, std = payload["atoms"], payload["mean"], payload["std"]
    if not isinstance(atoms, torch.Tensor) or not atoms.is_floating_point():
        raise ConfigurationError(f"{path} is a damaged dictionary file (its atoms are not a float tensor).")
    if payload["channels"] != 3:
        raise ConfigurationError(
            f"{path} codes {payload['channels']!r}-channel images; the evaluation matrix feeds 3-channel ones."
        )
    for name, value in (("mean", mean), ("std", std)):
        valid = isinstance(value, list) and len(value) == 3 and all(is_finite(channel) for channel in value)
        if not valid or name == "std" and min(value) <= 0:
            raise ConfigurationError(f"{path} is a damaged dictionary file ({name} {value!r}).")
    try:
        encoder = SparseCodingEncoder(atoms, **{name: payload[name] for name in settings})
    except ConfigurationError as error:
        raise ConfigurationError(f"{path} is a damaged dictionary file: {error}") from None
    norms = atoms.double().norm(dim=1)
    if bool((norms > 1 + 1e-4).any()):
        raise ConfigurationError(f"{path} has atoms of norm up to {float(norms.max()):.3g}, over the bound 1.")
    input_format = {"image_size": payload["image_size"], "mean": tuple(mean), "std": tuple(std)}
    return encoder, input_format


def patch_sample(images: torch.Tensor, patch_size: int, stride: int, per_image: int, seed: int) -> np.ndarray:
    """``per_image`` random centred patches of every image, as rows (at most all of each image's patches)."""
    patches = image_patches(images.to(torch.float64), patch_size, stride).flatten(1, 2)
    count = min(per_image, patches.shape[1])
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.rand(patches.shape[:2], generator=generator).argsort(dim=1)[:, :count]
    return patches.gather(1, chosen[:, :, None].expand(-1, -1, patches.shape[2])).flatten(0, 1).numpy()


def atoms_grid(atoms: np.ndarray, channels: int, patch_size: int) -> np.ndarray:
    """The atoms tiled into one greyscale picture (the channel mean), each scaled to its own range."""
    count = atoms.shape[0]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    tiles = atoms.reshape(count, channels, patch_size, patch_size).mean(axis=1)
    low, high = tiles.min(axis=(1, 2), keepdims=True), tiles.max(axis=(1, 2), keepdims=True)
    tiles = (tiles - low) / np.maximum(high - low, 1e-12)
    side = patch_size + 1
    grid = np.ones((rows * side + 1, columns * side + 1))
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        grid[1 + row * side : 1 + row * side + patch_size, 1 + column * side : 1 + column * side + patch_size] = tile
    return grid
