"""Self-taught learning's dictionary: planted atoms recovered, codes that solve the lasso, the encoder and its file."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from selfsup.checkpoints import read_checkpoint
from selfsup.classical.dictionary import (
    DICTIONARY_FORMAT,
    SparseCodingEncoder,
    atoms_grid,
    dictionary_from,
    image_patches,
    learn_atoms,
    patch_sample,
    random_encoder,
    save_dictionary,
    sparse_code,
)
from selfsup.errors import ConfigurationError

DIGITS_MEAN, DIGITS_STD = (0.19, 0.19, 0.19), (0.32, 0.32, 0.32)


def planted(n_atoms=8, dim=16, samples=2000, nonzeros=2, seed=0):
    """Unit-norm atoms (rows) and samples that are sparse combinations of them, without noise."""
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((n_atoms, dim))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = np.zeros((samples, n_atoms))
    for row in codes:
        chosen = rng.choice(n_atoms, nonzeros, replace=False)
        row[chosen] = rng.choice([-1, 1], nonzeros) * rng.uniform(1, 2, nonzeros)
    return atoms, codes @ atoms


def matched_cosines(learned: np.ndarray, true: np.ndarray) -> np.ndarray:
    """|cos| of each true atom with the learned atom the Hungarian matching gives it (sign and order free)."""
    cosines = np.abs(true @ learned.T) / np.linalg.norm(learned, axis=1)[None, :]
    rows, columns = linear_sum_assignment(-cosines)
    return cosines[rows, columns]


def test_planted_atoms_are_recovered_up_to_sign_and_order():
    true, data = planted(samples=1000)
    learned = learn_atoms(data, n_atoms=8, sparsity=0.3, epochs=100, seed=0)
    cosines = matched_cosines(learned, true)
    # Noise-free 2-sparse data: every atom comes back to within 2.6 degrees (|cos| > 0.999; measured >= 0.9997,
    # the L1 penalty's shrinkage of the codes tilting the atoms a little).
    assert cosines.min() > 0.999, cosines
    norms = np.linalg.norm(learned, axis=1)
    assert norms.max() <= 1 + 1e-9 and norms.min() > 1 - 1e-6  # ||d_k|| <= 1, tight at the optimum


def test_online_learner_keeps_the_constraint_and_reconstructs():
    true, data = planted(samples=1000)
    learned = learn_atoms(data, n_atoms=8, sparsity=0.3, epochs=5, seed=0, learner="online")
    assert np.linalg.norm(learned, axis=1).max() <= 1 + 1e-9
    codes = sparse_code(data, learned, 0.3)
    assert ((data - codes @ learned) ** 2).sum() / (data**2).sum() < 0.2


def test_learning_refuses_too_few_patches_and_an_unknown_learner():
    data = np.zeros((20, 4))
    data[:3] = 1.0
    with pytest.raises(ConfigurationError, match="3 non-constant patches cannot start 8 atoms"):
        learn_atoms(data, n_atoms=8, sparsity=0.1, epochs=1, seed=0)
    with pytest.raises(ConfigurationError, match="learner must be 'batch' or 'online'"):
        learn_atoms(planted(samples=50)[1], n_atoms=4, sparsity=0.1, epochs=1, seed=0, learner="sgd")


def test_codes_satisfy_the_lasso_optimality_conditions():
    """KKT of min 1/2||x - uD||^2 + lambda||u||_1: D r = lambda sign(u) on the support, |D r| <= lambda off it."""
    true, data = planted(samples=50)
    sparsity = 0.3
    codes = sparse_code(data, true, sparsity)
    correlation = (data - codes @ true) @ true.T
    support = codes != 0
    assert np.allclose(correlation[support], sparsity * np.sign(codes[support]), atol=1e-4)
    assert np.abs(correlation[~support]).max() <= sparsity + 1e-4
    assert support.sum(axis=1).mean() <= 3  # sparse: the planted 2 atoms, rarely a third


def test_a_larger_penalty_gives_sparser_codes():
    true, data = planted(samples=200)
    counts = [(sparse_code(data, true, penalty) != 0).sum() for penalty in (0.01, 0.3, 1.0, 3.0)]
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0]


def test_patches_by_hand():
    image = torch.arange(9, dtype=torch.float64).reshape(1, 1, 3, 3)
    patches = image_patches(image, patch_size=2, stride=1)
    assert patches.shape == (1, 2, 2, 4)
    # The top-left patch is [0, 1, 3, 4], mean 2; every 2x2 patch of this ramp is the same shape.
    assert torch.equal(patches[0, 0, 0], torch.tensor([-2.0, -1.0, 1.0, 2.0], dtype=torch.float64))
    assert torch.equal(patches[0, 1, 1], patches[0, 0, 0])


def test_patch_sample_draws_distinct_patches_of_each_image():
    images = torch.randn(3, 3, 8, 8)
    sample = patch_sample(images, patch_size=4, stride=2, per_image=5, seed=0)
    assert sample.shape == (15, 48)
    assert len({row.tobytes() for row in sample}) == 15
    assert np.allclose(sample.mean(axis=1), 0)
    assert patch_sample(images, 4, 2, per_image=100, seed=0).shape == (27, 48)  # at most the 9 patches of each


def test_encoder_pools_signed_codes_over_the_grid():
    torch.manual_seed(0)
    atoms = torch.randn(5, 3 * 16, dtype=torch.float64)
    atoms = torch.nn.functional.normalize(atoms - atoms.mean(dim=1, keepdim=True), dim=1)  # centred, as patches are
    encoder = SparseCodingEncoder(atoms, patch_size=4, stride=2, sparsity=0.1, pool_grid=2, image_size=10)
    images = torch.randn(4, 3, 10, 10)
    before = images.clone()
    codes = encoder.codes(images)
    assert codes.shape == (4, 10, 4, 4) and (codes >= 0).all()
    assert not ((codes[:, :5] > 0) & (codes[:, 5:] > 0)).any()  # a coefficient is positive or negative
    features = encoder(images)
    assert features.shape == (4, encoder.feature_dim) == (4, 2 * 5 * 4) and features.dtype == torch.float32
    top_left = codes[:, :, :2, :2].mean(dim=(2, 3))
    assert torch.allclose(features.reshape(4, 10, 2, 2)[:, :, 0, 0], top_left.float())
    assert torch.equal(images, before)
    # A patch 3 times an atom is coded by that atom alone, shrunk by the penalty: 3 - 0.1 (the residual 0.1 d_2
    # correlates with every other atom by at most 0.1, the optimality condition off the support).
    alone = torch.zeros(1, 3, 10, 10, dtype=torch.float64)
    alone[0, :, :4, :4] = 3 * atoms[2].reshape(3, 4, 4)
    first = encoder.codes(alone)[0, :, 0, 0]
    assert (first > 0).sum() == 1 and first[2] == pytest.approx(2.9, abs=1e-6)


def test_encoder_refuses_images_of_another_size_and_bad_settings():
    atoms = torch.nn.functional.normalize(torch.randn(5, 27), dim=1)
    encoder = SparseCodingEncoder(atoms, patch_size=3, stride=1, sparsity=0.1, pool_grid=2, image_size=8)
    with pytest.raises(ConfigurationError, match="codes \\(3, 8, 8\\) images, got \\(1, 3, 16, 16\\)"):
        encoder(torch.zeros(1, 3, 16, 16))
    bad = [
        (dict(patch_size=0), "patch_size must be an integer >= 1"),
        (dict(patch_size=9), "patch_size must be at most the image size 8"),
        (dict(stride=-1), "stride must be an integer >= 1"),
        (dict(sparsity=float("nan")), "sparsity must be a finite number > 0"),
        (dict(sparsity=0.0), "sparsity must be a finite number > 0"),
        (dict(pool_grid=7), "pool_grid must be at most the 6 patch rows"),
        (dict(pool_grid=2.5), "pool_grid must be an integer >= 1"),
    ]
    settings = dict(patch_size=3, stride=1, sparsity=0.1, pool_grid=2, image_size=8)
    for change, message in bad:
        with pytest.raises(ConfigurationError, match=message):
            SparseCodingEncoder(atoms, **(settings | change))
    with pytest.raises(ConfigurationError, match="must be \\(n_atoms, 27\\)"):
        SparseCodingEncoder(torch.ones(5, 12), **settings)
    with pytest.raises(ConfigurationError, match="NaN or infinite"):
        SparseCodingEncoder(torch.full((5, 27), float("nan")), **settings)


def test_random_encoder_has_the_settings_and_fresh_unit_atoms():
    atoms = torch.nn.functional.normalize(torch.randn(6, 27, dtype=torch.float64), dim=1)
    encoder = SparseCodingEncoder(atoms, patch_size=3, stride=1, sparsity=0.1, pool_grid=2, image_size=8)
    first, again, other = random_encoder(encoder, 0), random_encoder(encoder, 0), random_encoder(encoder, 1)
    assert first.settings() == encoder.settings() and first.atoms.shape == encoder.atoms.shape
    assert torch.allclose(first.atoms.norm(dim=1), torch.ones(6, dtype=torch.float64))
    assert torch.equal(first.atoms, again.atoms) and not torch.equal(first.atoms, other.atoms)


def test_dictionary_file_round_trip_and_damaged_files(tmp_path):
    atoms = torch.nn.functional.normalize(torch.randn(6, 27, dtype=torch.float64), dim=1)
    encoder = SparseCodingEncoder(atoms, patch_size=3, stride=1, sparsity=0.1, pool_grid=2, image_size=8)
    path = tmp_path / "dictionary.pt"
    save_dictionary(path, encoder, DIGITS_MEAN, DIGITS_STD, seed=3)
    payload = read_checkpoint(path)
    assert payload["format"] == DICTIONARY_FORMAT and payload["provenance"] == {"seed": 3}
    loaded, input_format = dictionary_from(payload, path)
    assert input_format == {"image_size": 8, "mean": DIGITS_MEAN, "std": DIGITS_STD}
    images = torch.randn(3, 3, 8, 8)
    assert torch.equal(loaded(images), encoder(images))
    damaged = [
        ({"atoms": None}, "no \\['atoms'\\]"),
        ({"atoms": "text"}, "not a float tensor"),
        ({"atoms": torch.ones(6, 27, dtype=torch.long)}, "not a float tensor"),
        ({"atoms": atoms * 2}, "norm up to 2, over the bound 1"),
        ({"atoms": atoms[:, :10]}, "must be \\(n_atoms, 27\\)"),
        ({"std": [0.3, 0.0, 0.3]}, "std"),
        ({"mean": [0.1, 0.2]}, "mean"),
        ({"patch_size": 20}, "patch_size must be at most the image size 8"),
        ({"pool_grid": "2"}, "pool_grid must be an integer"),
        ({"image_size": "16"}, "image_size must be an integer >= 1"),
        ({"channels": 1}, "codes 1-channel images; the evaluation matrix feeds 3-channel ones"),
    ]
    for change, message in damaged:
        broken = {key: value for key, value in (payload | change).items() if value is not None}
        with pytest.raises(ConfigurationError, match=message):
            dictionary_from(broken, path)


def test_atoms_picture_tiles_every_atom():
    atoms = np.random.default_rng(0).standard_normal((10, 3 * 25))
    grid = atoms_grid(atoms, channels=3, patch_size=5)
    assert grid.shape == (3 * 6 + 1, 4 * 6 + 1)  # 10 atoms: 4 columns, 3 rows of 5 px and a 1 px gap
    assert grid.min() == 0 and grid.max() == 1


def test_a_half_precision_trainer_leaves_the_atoms_in_float64():
    """Lightning's ``bf16-true`` converts a module's parameters and buffers; the coding still runs in float64."""
    atoms = torch.nn.functional.normalize(torch.randn(6, 27, dtype=torch.float64), dim=1)
    encoder = SparseCodingEncoder(atoms, patch_size=3, stride=1, sparsity=0.1, pool_grid=2, image_size=8)
    images = torch.randn(2, 3, 8, 8)
    full = encoder(images)
    encoder.to(torch.bfloat16)
    assert encoder.atoms.dtype == torch.float64 and torch.equal(encoder.atoms, atoms)
    half = encoder(images.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16 and torch.allclose(half.float(), full, atol=0.05, rtol=0.02)
