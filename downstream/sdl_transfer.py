"""Semi-coupled dictionary learning between two renderings of the digits: labels in one domain, test in the other.

    selfsup sdl --output_dir runs/sdl

The source domain is scikit-learn's embedded digits (8 x 8, 1797 images) scaled to [0, 1].
The target domain (``target_domain``) is, by default, their low-resolution version: each
2 x 2 block replaced by its mean, a 4 x 4 image shown at 8 x 8. That is the setting SDL was
made for, super-resolution from low- to high-resolution patches (Wang et al., CVPR 2012),
with whole 8 x 8 digits as the patches. Downsampling is linear but loses three quarters of
the pixels, so the best map back is not: the high-resolution image must come from a prior
on digits, which the dictionaries (and any non-linear regressor) can carry and a linear
pixel map cannot. The other target domains, kept as options, are non-linear renderings of
the digit rotated by 90 degrees: ``edges`` (its Sobel gradient magnitude, scaled to [0, 1]),
``threshold`` (a steep sigmoid, ``1 / (1 + exp(-20 (x - 0.5)))``) and
``rotated_blurred_inverted`` (a Gaussian blur of sigma 0.5 pixel, then ``1 - x``: an almost
affine function of the source, where a linear pixel map is near exact). Each seed splits
the images, stratified by digit, into ``pairs`` unlabelled (source, target) training pairs,
``labelled`` labelled source images and the rest, a held-out test set whose target images
are the input and whose source images the truth.

Three ways to relate the domains are learned on the training pairs
(:mod:`selfsup.classical.sdl`): SDL (Wang et al., CVPR 2012), the uncoupled pair it starts
from (a dictionary per domain, then ``W`` by ridge regression between their codes), and the
fully coupled pair (one dictionary on the concatenated pairs, ``W = I``; Yang et al., IEEE
TIP 2010). Each is scored by

- ``synthesis_mse``: the mean squared error per pixel of the source images synthesised from
  the held-out target images (``D^S W u_T``) against their true source images;
- ``cross_domain_accuracy``: a logistic regression trained on the source codes of the
  labelled source images, with their labels, and tested on the held-out target images
  mapped to source codes (``W u_T``): labels exist only in the source domain;
- ``in_domain_accuracy``: the upper bound with target labels, the same classifier trained on
  the target codes of the labelled images' target renderings and tested on the held-out
  target codes.

References: ``raw pixels, no transfer`` (the source-pixel classifier applied to target
pixels, the target image taken as its own source, and a target-pixel classifier in the
target domain), ``ridge map on pixels`` (least squares from target to source pixels fitted
on the training pairs, ridge penalty 1: the best linear map), ``5-NN map on pixels`` (each
target image mapped to the distance-weighted mean source image of its 5 nearest training
targets: a non-linear regressor with no dictionary) and ``mean source image``.

What came out at the defaults (low resolution, ``lambda = 0.5``, ``gamma = 1``; mean over
seeds 0-2, see ``sdl.md``): SDL and the uncoupled pair beat the linear pixel map a little
on synthesis (MSE 0.0222 and 0.0224 against the ridge map's 0.0229; the fully coupled pair
does not, 0.0265) and clearly on cross-domain accuracy (0.879 and 0.885 against 0.840;
fully coupled 0.859), but a 5-nearest-neighbour map on pixels beats them all on both
(0.0197, 0.903). SDL's coupling lowers the uncoupled pair's synthesis error by about 1%
(within a seed's spread) and does not raise its accuracy; the fully coupled pair
(``W = I``) is the worst of the three. At ``lambda = 0.1`` the uncoupled pair synthesises
as well as the 5-NN map (0.0195) while SDL, started from it, gets worse (0.0340): see
:func:`sdl_transfer`. On ``edges`` and ``threshold`` the ridge map's synthesis error is
half the dictionaries'.

Writes ``sdl.csv`` (a row per method and seed), ``sdl.md`` (mean ± sample std over seeds)
and ``sdl.png`` (test images and their syntheses; bars of the two transfer metrics) into
``output_dir``, and prints the table. The defaults were chosen at seed 100 (scored on part
of its labelled set, not on the test set), see :func:`sdl_transfer`.
"""

import csv
import io
import statistics
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from jsonargparse import CLI  # noqa: E402
from scipy.ndimage import gaussian_filter, sobel  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neighbors import KNeighborsRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from tqdm import tqdm  # noqa: E402

from downstream.command_line import EvaluateParser  # noqa: E402
from downstream.matrix_checks import check_writable  # noqa: E402
from selfsup.checkpoints import atomic_write_bytes  # noqa: E402
from selfsup.classical.sdl import (  # noqa: E402
    CoupledDictionaries,
    fit_fully_coupled,
    fit_semi_coupled,
    fit_uncoupled,
)
from selfsup.errors import ConfigurationError, is_finite, is_integer, require  # noqa: E402

BLUR_SIGMA = 0.5
"""``rotated_blurred_inverted``'s Gaussian blur, in pixels (after the rotation, before the inversion)."""

THRESHOLD_SLOPE = 20.0
"""``threshold``'s sigmoid slope: ``1 / (1 + exp(-slope (x - 0.5)))``, 0.12 at x = 0.4 and 0.88 at x = 0.6."""

NEIGHBOURS = 5
"""Training targets averaged by the ``5-NN map on pixels`` reference (chosen at seed 100 from 1, 3, 5 and 10)."""

TARGET_DOMAINS = {
    "low_resolution": "low-resolution digits (2 x 2 block means)",
    "edges": "edge maps of rotated digits (Sobel gradient magnitude)",
    "threshold": "rotated digits through a steep sigmoid",
    "rotated_blurred_inverted": "rotated, blurred, inverted digits",
}
"""The target domains :func:`paired_digits` renders, with the words the report uses for them."""

IMAGES, CLASSES = 1797, 10

SDL, UNCOUPLED, FULLY_COUPLED = "SDL", "uncoupled pair", "fully coupled (W = I)"
RAW, RIDGE, NEAREST, MEAN = "raw pixels, no transfer", "ridge map on pixels", "5-NN map on pixels", "mean source image"
METHODS = (SDL, UNCOUPLED, FULLY_COUPLED, RAW, RIDGE, NEAREST, MEAN)
METRICS = ("synthesis_mse", "cross_domain_accuracy", "in_domain_accuracy")
MEANINGS = {
    "synthesis_mse": "per pixel, lower is better",
    "cross_domain_accuracy": "source labels only, target test images",
    "in_domain_accuracy": "target labels: the upper bound",
}


def sdl_transfer(
    output_dir: str = "runs/sdl",
    target_domain: str = "low_resolution",
    n_atoms: int = 64,
    gamma: float = 1.0,
    lambda_source: float = 0.5,
    lambda_target: float = 0.5,
    lambda_mapping: float = 0.01,
    iterations: int = 15,
    seeds: list[int] = (0, 1, 2),
    pairs: int = 800,
    labelled: int = 500,
    initial_iterations: int = 20,
) -> dict[str, dict[str, list[float]]]:
    """SDL, the uncoupled pair and the fully coupled pair between digits and a rendering of them (the target domain).

    Args:
        output_dir: where sdl.csv, sdl.md and sdl.png are written.
        target_domain: the target rendering (:func:`paired_digits`): ``low_resolution``, ``edges``,
            ``threshold`` or ``rotated_blurred_inverted``.
        n_atoms: atoms K in each dictionary.
        gamma: SDL's coupling weight on ``||U^S - W U^T||_F^2``.
        lambda_source: the source codes' l1 penalty (also the fully coupled pair's, averaged with ``lambda_target``).
        lambda_target: the target codes' l1 penalty.
        lambda_mapping: the ridge penalty on ``W``.
        iterations: the most SDL alternations after the uncoupled start (it stops earlier at a
            relative decrease of the objective below 1e-5).
        seeds: each draws the splits and the dictionaries' starting atoms.
        pairs: unlabelled (source, target) training pairs for the dictionaries, ``W`` and the ridge map.
        labelled: labelled source images for the classifiers; the remaining images are the test set.
        initial_iterations: scikit-learn's dictionary-learning iterations for each start.

    Returns:
        method -> metric -> one value per seed (NaN where a reference has no such value).

    Defaults, chosen at seed 100 by scoring on 200 of its labelled images (synthesis from
    their target renderings; the classifier fitted on the other 300), never on a test set.
    The target domain: with ``lambda = 0.5``, ``gamma = 1``, the ridge map's synthesis MSE
    against SDL's, the uncoupled pair's and the fully coupled pair's was 0.0240 against
    0.0224, 0.0234 and 0.0261 for ``low_resolution``, 0.0079 against 0.0169, 0.0178 and
    0.0202 for ``edges`` and 0.0068 against 0.0149, 0.0153 and 0.0147 for ``threshold`` (a
    cube, ``x^3``, was like ``threshold``: 0.0080 against 0.018 to 0.023), so only the low
    resolution is a setting where a linear pixel map is not the answer. Then, there,
    ``lambda`` in {0.1, 0.25, 0.5, 1} at ``gamma = 1`` (SDL 0.0308, 0.0226, 0.0224, 0.0275
    MSE and 0.825, 0.865, 0.89, 0.895 accuracy; the uncoupled pair 0.0206, 0.0215, 0.0234,
    0.0283 and 0.87, 0.875, 0.90, 0.865) and ``gamma`` in {0.3, 1, 3} at ``lambda`` 0.5
    (SDL 0.0231, 0.0224, 0.0228 and 0.885, 0.89, 0.91) and 0.25 (0.0229, 0.0226, 0.0221),
    and ``gamma`` 0.1 and 0.3 at ``lambda = 0.1`` (SDL 0.0263 and 0.0353). ``lambda = 0.5``
    gave the uncoupled pair's best accuracy and SDL's within noise of its best (0.89 against
    0.895 at 1, on 200 images), and ``gamma = 1`` SDL's best synthesis there. But the
    uncoupled pair's best synthesis is at ``lambda = 0.1``, where SDL falls behind its own
    start (also at seeds 0-2, reported and not used for the choice: 0.0195 against 0.0340):
    with little shrinkage, SDL's training target codes fit the coupling term (0.0034
    training synthesis error at seed 100) in a way the target lasso alone, all there is at
    test time, does not reproduce (0.0272 from the same training targets). 15 alternations
    (40 changed SDL's MSE by under 1e-5) and 20 initial iterations keep the three seeds near
    70 s on a 2-core CPU. The ``5-NN`` reference's k: 1, 3, 5, 10 gave 0.0302, 0.0223,
    0.0212, 0.0228.
    """
    _check_target_domain(target_domain)
    _check_settings(output_dir, n_atoms, gamma, lambda_source, lambda_target, lambda_mapping, iterations, seeds)
    check_writable(Path(output_dir))
    _check_splits(pairs, labelled, initial_iterations)
    settings = (
        f"target_domain={target_domain}, n_atoms={n_atoms}, gamma={gamma}, lambda_source={lambda_source}, "
        f"lambda_target={lambda_target}, "
        f"lambda_mapping={lambda_mapping}, iterations={iterations}, pairs={pairs}, labelled={labelled}, "
        f"initial_iterations={initial_iterations}"
    )
    source, target, labels = paired_digits(target_domain)
    results = {method: {metric: [] for metric in METRICS} for method in METHODS}
    notes, examples = [], None
    progress = tqdm(total=3 * len(seeds), desc="sdl", unit="fit", file=sys.stderr)
    for seed in seeds:
        train, labelled_set, test = _split(labels, pairs, labelled, seed)
        penalties = (gamma, lambda_source, lambda_target, lambda_mapping)
        progress.set_postfix_str(f"seed {seed}: uncoupled pair")
        uncoupled = fit_uncoupled(source[train], target[train], n_atoms, *penalties, seed, initial_iterations)
        progress.update()
        progress.set_postfix_str(f"seed {seed}: SDL")
        coupled = fit_semi_coupled(
            source[train],
            target[train],
            n_atoms,
            *penalties,
            iterations=iterations,
            tolerance=1e-5,
            initial=uncoupled,
        )
        progress.update()
        progress.set_postfix_str(f"seed {seed}: fully coupled")
        joint = fit_fully_coupled(
            source[train], target[train], n_atoms, (lambda_source + lambda_target) / 2, seed, initial_iterations
        )
        progress.update()
        history = coupled.objective_history
        notes.append(
            f"seed {seed}: SDL ran {len(history) - 1} alternations, objective {history[0]:.5g} -> {history[-1]:.5g}"
        )
        models = {SDL: coupled, UNCOUPLED: uncoupled, FULLY_COUPLED: joint}
        for method, model in models.items():
            scores = _score_model(model, source, target, labels, labelled_set, test)
            for metric, value in scores.items():
                results[method][metric].append(value)
        for method, scores in _score_references(source, target, labels, train, labelled_set, test).items():
            for metric in METRICS:
                results[method][metric].append(scores.get(metric, float("nan")))
        if examples is None:
            examples = _examples(models, source, target, train, test)
    progress.close()
    print(_write(results, list(seeds), notes, examples, Path(output_dir), settings, TARGET_DOMAINS[target_domain]))
    return results


def paired_digits(target_domain: str = "low_resolution") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The source images (1797 x 64, [0, 1]), their target renderings (1797 x 64, [0, 1]) and the digits.

    The renderings, each a deterministic function of one 8 x 8 source image:

    - ``low_resolution``: each 2 x 2 block replaced by its mean (a 4 x 4 image, each of its
      pixels repeated over a 2 x 2 block): linear, but three quarters of the information gone;
    - ``edges``: the gradient magnitude ``sqrt(g_x^2 + g_y^2)`` of the digit rotated by 90
      degrees, ``g`` its Sobel derivatives with zeros outside the image, divided by
      ``4 sqrt(2)`` (the largest it can be for an image in [0, 1]);
    - ``threshold``: the digit rotated by 90 degrees, then ``1 / (1 + exp(-20 (x - 0.5)))``
      pixel by pixel (:data:`THRESHOLD_SLOPE`), near binary;
    - ``rotated_blurred_inverted``: the digit rotated by 90 degrees, blurred (Gaussian, sigma
      :data:`BLUR_SIGMA` pixel) and inverted (``1 - x``).
    """
    _check_target_domain(target_domain)
    digits = load_digits()
    images = digits.images / 16.0
    rotated = np.rot90(images, k=1, axes=(1, 2))
    if target_domain == "low_resolution":
        blocks = images.reshape(len(images), 4, 2, 4, 2).mean(axis=(2, 4))
        rendered = np.repeat(np.repeat(blocks, 2, axis=1), 2, axis=2)
    elif target_domain == "edges":
        # image by image: on the stack, sobel would also smooth across neighbouring images
        magnitude = [
            np.hypot(sobel(image, axis=0, mode="constant"), sobel(image, axis=1, mode="constant")) for image in rotated
        ]
        rendered = np.minimum(np.stack(magnitude) / (4 * np.sqrt(2)), 1.0)
    elif target_domain == "threshold":
        rendered = 1.0 / (1.0 + np.exp(-THRESHOLD_SLOPE * (rotated - 0.5)))
    else:
        rendered = 1.0 - gaussian_filter(rotated, sigma=(0, BLUR_SIGMA, BLUR_SIGMA))
    return images.reshape(len(images), -1), rendered.reshape(len(images), -1), digits.target


def _split(labels: np.ndarray, pairs: int, labelled: int, seed: int):
    """Stratified: ``pairs`` training pairs, ``labelled`` labelled source images, the rest for testing."""
    everything = np.arange(len(labels))
    train, rest = train_test_split(everything, train_size=pairs, stratify=labels, random_state=seed)
    labelled_set, test = train_test_split(rest, train_size=labelled, stratify=labels[rest], random_state=seed)
    return train, labelled_set, test


def _classifier():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def _accuracy(train_features, train_labels, test_features, test_labels) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return float(_classifier().fit(train_features, train_labels).score(test_features, test_labels))


def _score_model(model: CoupledDictionaries, source, target, labels, labelled_set, test) -> dict[str, float]:
    target_codes = model.encode_target(target[test])
    mapped_codes = target_codes @ model.mapping.T  # model.target_to_source_codes, coding the test set once
    synthesised = mapped_codes @ model.source_atoms  # model.synthesise_source
    return {
        "synthesis_mse": float(np.mean((synthesised - source[test]) ** 2)),
        "cross_domain_accuracy": _accuracy(
            model.encode_source(source[labelled_set]), labels[labelled_set], mapped_codes, labels[test]
        ),
        "in_domain_accuracy": _accuracy(
            model.encode_target(target[labelled_set]), labels[labelled_set], target_codes, labels[test]
        ),
    }


def _score_references(source, target, labels, train, labelled_set, test) -> dict[str, dict[str, float]]:
    mapped = _ridge(source, target, train).predict(target[test])
    nearest = _nearest(source, target, train).predict(target[test])
    source_classifier = (source[labelled_set], labels[labelled_set])
    return {
        RAW: {
            "synthesis_mse": float(np.mean((target[test] - source[test]) ** 2)),
            "cross_domain_accuracy": _accuracy(*source_classifier, target[test], labels[test]),
            "in_domain_accuracy": _accuracy(target[labelled_set], labels[labelled_set], target[test], labels[test]),
        },
        RIDGE: {
            "synthesis_mse": float(np.mean((mapped - source[test]) ** 2)),
            "cross_domain_accuracy": _accuracy(*source_classifier, mapped, labels[test]),
        },
        NEAREST: {
            "synthesis_mse": float(np.mean((nearest - source[test]) ** 2)),
            "cross_domain_accuracy": _accuracy(*source_classifier, nearest, labels[test]),
        },
        MEAN: {"synthesis_mse": float(np.mean((source[train].mean(axis=0) - source[test]) ** 2))},
    }


def _ridge(source, target, train) -> Ridge:
    return Ridge(alpha=1.0).fit(target[train], source[train])


def _nearest(source, target, train) -> KNeighborsRegressor:
    return KNeighborsRegressor(NEIGHBOURS, weights="distance").fit(target[train], source[train])


def _examples(models: dict[str, CoupledDictionaries], source, target, train, test, count: int = 8):
    """The first seed's first ``count`` test images: the target, the syntheses from it and the true source."""
    shown = test[:count]
    return {
        "target image": target[shown],
        "SDL": models[SDL].synthesise_source(target[shown]),
        "uncoupled pair": models[UNCOUPLED].synthesise_source(target[shown]),
        "fully coupled": models[FULLY_COUPLED].synthesise_source(target[shown]),
        "ridge map": _ridge(source, target, train).predict(target[shown]),
        "5-NN map": _nearest(source, target, train).predict(target[shown]),
        "true source": source[shown],
    }


def _summary(values: list[float], digits: int) -> str:
    finite = [value for value in values if np.isfinite(value)]
    if not finite:
        return "—"
    mean = statistics.fmean(finite)
    return f"{mean:.{digits}f} ± {statistics.stdev(finite):.{digits}f}" if len(finite) > 1 else f"{mean:.{digits}f}"


def _write(results, seeds, notes, examples, output_dir: Path, settings: str, domain: str) -> str:
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = io.StringIO(newline="")
    writer = csv.writer(rows)
    writer.writerow(["method", "seed", *METRICS])
    for method in METHODS:
        for index, seed in enumerate(seeds):
            values = [results[method][metric][index] for metric in METRICS]
            writer.writerow([method, seed, *("" if np.isnan(value) else repr(value) for value in values)])
    atomic_write_bytes(rows.getvalue().encode(), output_dir / "sdl.csv")
    spread = f"mean ± std over seeds {seeds}" if len(seeds) > 1 else f"1 seed: {seeds[0]}"
    lines = [
        f"**Source: digits; target: {domain}** ({spread}; {settings})",
        "",
        "| method | " + " | ".join(f"{metric} ({MEANINGS[metric]})" for metric in METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for method in METHODS:
        cells = [_summary(results[method][metric], 5 if metric == "synthesis_mse" else 3) for metric in METRICS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", *notes]
    table = "\n".join(lines)
    atomic_write_bytes((table + "\n").encode(), output_dir / "sdl.md")
    atomic_write_bytes(_figure(results, examples, domain), output_dir / "sdl.png")
    return table


def _figure(results, examples: dict[str, np.ndarray], domain: str) -> bytes:
    count = len(next(iter(examples.values())))
    figure = plt.figure(figsize=(10, 10.5))
    grid = figure.add_gridspec(2, 1, height_ratios=[1.6, 1], hspace=0.16, top=0.94)
    images = grid[0].subgridspec(len(examples), count, wspace=0.06, hspace=0.12)
    for row, (title, pictures) in enumerate(examples.items()):
        for column in range(count):
            axis = figure.add_subplot(images[row, column])
            axis.imshow(np.clip(pictures[column].reshape(8, 8), 0, 1), cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=10)
    bars = grid[1].subgridspec(1, 2, wspace=0.62)
    colours = dict(
        zip(METHODS, ("tab:blue", "tab:orange", "tab:green", "tab:grey", "tab:purple", "tab:red", "tab:brown"))
    )
    panels = (
        ("synthesis_mse", "synthesis MSE per pixel (lower is better)", 5),
        ("cross_domain_accuracy", "cross-domain accuracy (source labels only)", 3),
    )
    for position, (metric, title, digits) in enumerate(panels):
        axis = figure.add_subplot(bars[0, position])
        shown = [method for method in METHODS if np.isfinite(results[method][metric]).all()]
        values = [np.asarray(results[method][metric]) for method in shown]
        means = np.array([value.mean() for value in values])
        stds = np.array([value.std(ddof=1) if len(value) > 1 else 0.0 for value in values])
        axis.barh(range(len(shown)), means, xerr=stds, color=[colours[method] for method in shown], capsize=3)
        axis.set_yticks(range(len(shown)))
        axis.set_yticklabels(shown, fontsize=9)
        axis.invert_yaxis()
        for index, (mean, std) in enumerate(zip(means, stds)):
            label = f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values[index]) > 1 else f"{mean:.{digits}f}"
            axis.text(mean + std, index, "  " + label, va="center", fontsize=8)
        if metric == "synthesis_mse" and means.max() > 20 * means.min():  # a linear axis would hide the smallest
            axis.set_xscale("log")
            axis.set_xlim(means.min() / 3, means.max() * 30)
            title = title.replace("(", "(log scale, ")
        elif metric == "synthesis_mse":
            axis.set_xlim(0, means.max() * 1.6)
        else:
            axis.set_xlim(0, 1.45)
            axis.set_xticks([0, 0.25, 0.5, 0.75, 1])
        axis.set_title(title, fontsize=10)
    figure.suptitle(f"SDL: source digits synthesised from the target domain, {domain}", fontsize=12)
    image = io.BytesIO()
    figure.savefig(image, dpi=100, format="png", bbox_inches="tight")
    plt.close(figure)
    return image.getvalue()


def _check_target_domain(target_domain) -> None:
    valid = isinstance(target_domain, str) and target_domain in TARGET_DOMAINS
    require(valid, "target_domain", target_domain, f"one of {', '.join(TARGET_DOMAINS)}")


def _check_settings(output_dir, n_atoms, gamma, lambda_source, lambda_target, lambda_mapping, iterations, seeds):
    require(isinstance(output_dir, str) and output_dir.strip() != "", "output_dir", output_dir, "a directory path")
    require(is_integer(n_atoms) and n_atoms >= 1, "n_atoms", n_atoms, "an integer >= 1")
    require(is_integer(iterations) and iterations >= 1, "iterations", iterations, "an integer >= 1")
    for name, value in (("gamma", gamma), ("lambda_source", lambda_source), ("lambda_target", lambda_target)):
        require(is_finite(value) and value > 0, name, value, "a finite number > 0")
    require(is_finite(lambda_mapping) and lambda_mapping >= 0, "lambda_mapping", lambda_mapping, "a finite number >= 0")
    require(
        isinstance(seeds, (list, tuple))
        and len(seeds) >= 1
        and all(is_integer(seed) and 0 <= seed < 2**32 for seed in seeds)
        and len(set(seeds)) == len(seeds),
        "seeds",
        seeds,
        "a non-empty list of distinct integers between 0 and 2**32 - 1",
    )


def _check_splits(pairs, labelled, initial_iterations) -> None:
    require(is_integer(pairs) and pairs >= CLASSES, "pairs", pairs, f"an integer >= {CLASSES} (one per digit)")
    require(
        is_integer(labelled) and labelled >= CLASSES, "labelled", labelled, f"an integer >= {CLASSES} (one per digit)"
    )
    if pairs + labelled > IMAGES - CLASSES:
        raise ConfigurationError(
            f"pairs + labelled must leave at least {CLASSES} of the {IMAGES} digits for testing, "
            f"got {pairs} + {labelled}."
        )
    require(
        is_integer(initial_iterations) and initial_iterations >= 1,
        "initial_iterations",
        initial_iterations,
        "an integer >= 1",
    )


class SDLParser(EvaluateParser):
    command = "sdl"


def main(arguments: list[str]) -> None:
    """Semi-coupled dictionary learning between digits and a rendering of them: synthesis and transfer."""
    CLI(sdl_transfer, args=arguments, as_positional=False, parser_class=SDLParser)
