"""Self-taught learning's first half: a sparse dictionary of the patches of unlabelled source images.

    selfsup dictionary --config configs/classical/dictionary_digits.yaml

Reads the training split of a pretraining datamodule (``data``, as in a ``selfsup fit``
config; its labels are never read) through its evaluation transform, samples
``patches_per_image`` centred patches of every image, and learns ``n_atoms`` atoms with
scikit-learn (:mod:`selfsup.classical.dictionary`). Writes into ``output_dir``:

* ``dictionary.pt``: a file the evaluation matrix takes as a checkpoint (kNN, linear,
  logistic, LogME and the transferability scores; fine-tuning and layer-wise probes do
  not apply to it) — the second half, coding the target's images, happens there;
* ``atoms.png``: the learned atoms;

and prints what the atoms do on held-out patches: the relative reconstruction error and
the number of non-zero coefficients per patch.
"""

import io
import logging
import sys
import time
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from jsonargparse import CLI  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from tqdm import tqdm  # noqa: E402

from downstream.command_line import EvaluateParser  # noqa: E402
from selfsup.checkpoints import atomic_write_bytes  # noqa: E402
from selfsup.classical.dictionary import (  # noqa: E402
    SparseCodingEncoder,
    atoms_grid,
    check_coding,
    learn_atoms,
    patch_sample,
    save_dictionary,
    sparse_code,
)
from selfsup.data.augment import eval_transform  # noqa: E402
from selfsup.data.base import PretrainDataModule  # noqa: E402
from selfsup.data.datasets import TransformedDataset  # noqa: E402
from selfsup.errors import ConfigurationError, is_integer, require  # noqa: E402

HELD_OUT_PATCHES = 2000


def learn_dictionary(
    data: PretrainDataModule,
    output_dir: str = "runs/dictionary",
    n_atoms: int = 64,
    sparsity: float = 0.5,
    patch_size: int = 6,
    stride: int = 2,
    pool_grid: int = 2,
    patches_per_image: int = 10,
    max_images: int | None = None,
    epochs: int = 30,
    learner: Literal["batch", "online"] = "batch",
    seed: int = 0,
) -> SparseCodingEncoder:
    """Learn a dictionary of the source images' patches and write it with a picture of its atoms.

    Args:
        data: the source images: a pretraining datamodule (``class_path``, ``init_args``); its
            training split, at its ``image_size`` and normalisation, without augmentation.
        output_dir: where ``dictionary.pt`` and ``atoms.png`` are written.
        n_atoms: K, the atoms of the dictionary.
        sparsity: lambda, the weight of the codes' L1 norm (in learning and in coding).
        patch_size: the side of the square patches.
        stride: the step between the patches coded for a target image (sampling takes them from the same grid).
        pool_grid: target codes are averaged over a ``pool_grid x pool_grid`` grid of image cells.
        patches_per_image: random patches sampled from each source image for learning.
        max_images: at most this many source images (a seeded random subset; ``null``: all).
        epochs: alternations of coding and dictionary update (``batch``), or passes over the patches (``online``).
        learner: ``batch`` (exact alternation over all patches) or ``online`` (mini-batch steps: for millions of
            patches); see :func:`selfsup.classical.dictionary.learn_atoms`.
        seed: draws the images, the patches and the learner's initial atoms.
    """
    require(isinstance(n_atoms, int) and not isinstance(n_atoms, bool) and n_atoms >= 1, "n_atoms", n_atoms, ">= 1")
    for name, value in (("patches_per_image", patches_per_image), ("epochs", epochs)):
        require(isinstance(value, int) and not isinstance(value, bool) and value >= 1, name, value, "an integer >= 1")
    require(max_images is None or max_images >= 1, "max_images", max_images, "null or >= 1")
    require(is_integer(seed) and 0 <= seed < 2**32, "seed", seed, "an integer in [0, 2**32)")
    check_coding(patch_size, stride, sparsity, pool_grid, data.image_size)
    output = Path(output_dir)
    if output.exists() and not output.is_dir():
        raise ConfigurationError(f"output_dir {output} is a file; give a directory to write the dictionary into.")
    output.mkdir(parents=True, exist_ok=True)

    patches, image_count, channels = _source_patches(data, max_images, patch_size, stride, patches_per_image, seed)
    generator = np.random.default_rng(seed)
    order = generator.permutation(len(patches))
    held_out = patches[order[: min(HELD_OUT_PATCHES, len(patches) // 5)]]
    training = patches[order[len(held_out) :]]
    if len(training) < n_atoms or not len(held_out):
        raise ConfigurationError(
            f"{len(patches)} patches cannot determine {n_atoms} atoms and hold out a fifth to check them: raise "
            "patches_per_image or max_images, or lower n_atoms."
        )
    print(f"selfsup dictionary: {n_atoms} atoms from {len(training)} patches of {image_count} images", file=sys.stderr)
    started = time.perf_counter()
    atoms = learn_atoms(training, n_atoms, sparsity, epochs, seed, learner)
    seconds = time.perf_counter() - started
    encoder = SparseCodingEncoder(
        torch.from_numpy(atoms), patch_size, stride, sparsity, pool_grid, data.image_size, channels
    )
    error, nonzeros = _coding_quality(held_out, atoms, sparsity)
    save_dictionary(
        output / "dictionary.pt",
        encoder,
        data.mean,
        data.std,
        data=f"{type(data).__module__}.{type(data).__qualname__}",
        images=image_count,
        training_patches=len(training),
        epochs=epochs,
        learner=learner,
        seed=seed,
        scikit_learn=sklearn.__version__,
        held_out_relative_error=error,
        held_out_nonzeros=nonzeros,
    )
    _plot_atoms(atoms, channels, patch_size, output / "atoms.png")
    print(
        f"dictionary: {n_atoms} atoms of {patch_size}x{patch_size} patches, learned in {seconds:.1f} s; "
        f"held-out patches: relative reconstruction error {error:.3f}, {nonzeros:.1f} non-zero codes of "
        f"{n_atoms} per patch; wrote {output / 'dictionary.pt'} and {output / 'atoms.png'}"
    )
    return encoder


def _source_patches(
    data: PretrainDataModule, max_images: int | None, patch_size: int, stride: int, per_image: int, seed: int
) -> tuple[np.ndarray, int, int]:
    """Patches of the datamodule's training images through its evaluation transform, batch by batch.

    Only the sampled patches are kept (never the images of a large folder); batch ``b``'s are
    drawn by ``seed + b``, so the sample is the same for every number of workers.
    """
    train = data.raw_splits()[0]
    transform = eval_transform(data.image_size, data.mean, data.std, data.crop_fraction)
    indices = list(range(len(train)))
    if max_images is not None and max_images < len(indices):
        indices = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:max_images].tolist()
    subset = torch.utils.data.Subset(TransformedDataset(train, transform), indices)
    loader = DataLoader(subset, batch_size=256, num_workers=data.num_workers)
    patches, channels = [], 3
    for batch, (images, _) in enumerate(tqdm(loader, desc="source images", unit="batch", file=sys.stderr)):
        patches.append(patch_sample(images, patch_size, stride, per_image, seed + batch))
        channels = images.shape[1]
    if not patches:
        raise ConfigurationError(f"{type(data).__name__} has no training images to learn a dictionary from.")
    return np.concatenate(patches), len(subset), channels


def _coding_quality(patches: np.ndarray, atoms: np.ndarray, sparsity: float) -> tuple[float, float]:
    """Relative squared reconstruction error and non-zero codes per patch, on ``patches``."""
    codes = sparse_code(patches, atoms, sparsity)
    residual = patches - codes @ atoms
    error = float((residual**2).sum() / max((patches**2).sum(), 1e-12))
    return error, float((codes != 0).sum(axis=1).mean())


def _plot_atoms(atoms: np.ndarray, channels: int, patch_size: int, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 6))
    axis.imshow(atoms_grid(atoms, channels, patch_size), cmap="gray", interpolation="nearest")
    axis.set_title(f"{len(atoms)} atoms of {patch_size}x{patch_size} patches (each scaled to its range)")
    axis.axis("off")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(buffer.getvalue(), path)


class DictionaryParser(EvaluateParser):
    command = "dictionary"


def main(arguments: list[str]) -> None:
    """Learn a sparse dictionary of image patches (self-taught learning, textbook §6.1.2)."""
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    CLI(learn_dictionary, args=arguments, as_positional=False, parser_class=DictionaryParser)
