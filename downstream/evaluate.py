"""The evaluation matrix: checkpoints x datasets x protocols x seeds, in one command.

    selfsup evaluate --config configs/downstream/digits.yaml
    selfsup evaluate --config configs/downstream/digits_fewshot.yaml
    selfsup evaluate --checkpoints '{simclr: runs/demo/simclr/backbone.pt}' \\
        --datasets '{digits: null, cifar10: /data/cifar10}' --protocols '[knn, linear, logme]' --seeds '[0, 1, 2]'

Every key of the YAML file is an argument of :func:`evaluate_matrix`. Each backbone
sees each dataset at the input size and normalisation it was pretrained with; random
networks and raw pixels are baseline rows (:mod:`downstream.representations`). Every
value is appended to ``cells.jsonl`` in ``output_dir`` as soon as it is computed, and a
rerun reuses those already there (:mod:`downstream.cells`). Writes ``results.csv``,
``results.md`` and ``results.png`` into ``output_dir`` (rank 0 only), prints the table,
and logs it to W&B when ``wandb_project`` is set.

Every setting is checked before the first cell: the ranges of the recipes, labels, seeds
and hardware, every checkpoint, every dataset (its layout, and ``labels_per_class`` and
``knn.k`` against its labelled training split) and the output directory. A bad value is
one line naming its key, its valid range and the value (exit code 2), and nothing is
written. An ``output_dir`` whose report holds rows this matrix would not write again
(another matrix's results) is refused unless ``existing_results: overwrite``;
``cells.jsonl`` is only ever appended to.

Protocols: ``knn`` (weighted kNN, top-1 %), ``linear`` (linear probe by SGD, top-1 %),
``logistic`` (logistic regression by L-BFGS on the frozen features, top-1 %),
``finetune`` (top-1 %), ``layerwise`` (a linear probe on every stage's pooled
features, top-1 %), ``logme`` (LogME of the frozen features; no training),
``transferability`` (every score of :data:`downstream.transferability.SCORES` on the frozen
features, and the seconds each took; per stage too with ``transferability.layers``). The
report ranks the checkpoints by each score against the accuracies after training
(Kendall's tau and weighted tau with bootstrap intervals) and, from the per-example test
losses of the trained protocols, by Taskonomy's affinity (``docs/transferability.md``).
"""

import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from jsonargparse import CLI
from pytorch_lightning.utilities import rank_zero_only
from tqdm import tqdm

from downstream.cells import CellStore, fingerprint
from downstream.command_line import UNIQUE_KEYS_MODE, EvaluateParser, use_unique_keys_loader
from downstream.datasets import check_dataset, load_dataset
from downstream.extraction import FeatureCache
from downstream.hardware import Hardware
from downstream.logme import logme
from downstream.matrix_checks import (
    CELLS_FILE,
    ExistingResults,
    Protocol,
    check_frozen_stages,
    check_labels,
    check_output,
    check_settings,
    check_writable,
)
from downstream.protocols import (
    Task,
    fine_tune,
    knn_accuracy,
    linear_on_features,
    linear_on_images,
    logistic_accuracy,
)
from downstream.recipes import FinetuneRecipe, KNNRecipe, LinearRecipe, LogisticRecipe, TransferabilityRecipe
from downstream.report import Result, write_report
from downstream.representations import (
    FEATURE_PROTOCOLS,
    Representation,
    checkpoint_rows,
    random_init_rows,
    raw_pixels_row,
)
from downstream.row_cost import cost_table, device_of, measure
from downstream.splits import balanced_subset, label_fraction_subset, labels_of
from downstream.transferability import SCORES
from downstream.value_names import TRAINED_PROTOCOLS, layer_score_name, score_name, seconds_name
from selfsup.errors import ConfigurationError


def evaluate_matrix(
    checkpoints: dict[str, str | dict],
    datasets: dict[str, str | None],
    protocols: list[Protocol] = ("knn", "linear", "logme"),
    output_dir: str = "runs/eval",
    label_fraction: float = 1.0,
    labels_per_class: int | None = None,
    seeds: list[int] = (0,),
    random_init_baseline: bool = True,
    raw_pixels_baseline: bool = False,
    knn: KNNRecipe = KNNRecipe(),
    linear: LinearRecipe = LinearRecipe(),
    logistic: LogisticRecipe = LogisticRecipe(),
    finetune: FinetuneRecipe = FinetuneRecipe(),
    transferability: TransferabilityRecipe = TransferabilityRecipe(),
    hardware: Hardware = Hardware(),
    existing_results: ExistingResults = "refuse",
    wandb_project: str | None = None,
    wandb_offline: bool = True,
    row_costs: bool = True,
) -> list[Result]:
    """Evaluate every checkpoint on every dataset with every protocol, once per seed.

    Args:
        checkpoints: name -> path of a ``backbone.pt`` export or a Lightning checkpoint, or an
            entry ``{path, backbone, backbone_kwargs, prefix, image_size, mean, std}`` for
            another project's file (``docs/checkpoints.md``).
        datasets: name (digits, digits_transfer, cifar10, cifar100, stl10, imagefolder) ->
            its data directory (``null`` for the embedded digits).
        protocols: which of knn, linear, logistic, logme, layerwise, finetune, transferability
            (the scores of :data:`downstream.transferability.SCORES` on the frozen features) to run.
        output_dir: where cells.jsonl, results.csv, results.md and results.png are written.
        label_fraction: the class-balanced fraction of training labels used (0.01 = 1%).
        labels_per_class: instead of a fraction, this many labels per class.
        seeds: each draws the labelled subset, the training order and the random baselines;
            the tables report mean ± std over them.
        random_init_baseline: add a randomly initialised backbone of each architecture and input size.
        raw_pixels_baseline: add the flattened images as a row (feature protocols only).
        existing_results: an ``output_dir`` whose report holds rows this matrix would not write
            (another matrix's results): ``refuse`` to start, or ``overwrite`` that report.
            ``cells.jsonl`` keeps every value either way.
        row_costs: end the report with every row's parameters and inference images/s, timed side by
            side in this run (:mod:`downstream.row_cost`).
    """
    check_settings(checkpoints, datasets, protocols, output_dir, label_fraction, labels_per_class, seeds, hardware)
    for dataset, data_dir in datasets.items():
        check_dataset(dataset, data_dir)
    rows = checkpoint_rows(checkpoints)
    if random_init_baseline:
        rows += random_init_rows(rows)
    if raw_pixels_baseline:
        rows.append(raw_pixels_row(rows))
    if "finetune" in protocols:
        check_frozen_stages(finetune, rows)
    _announce_protocols_that_do_not_apply(rows, protocols, linear)
    recipes = {"knn": knn, "linear": linear, "logistic": logistic, "layerwise": linear, "finetune": finetune}
    scoring = transferability
    if labels_per_class is not None:
        labels, described = {"labels_per_class": labels_per_class}, f"{labels_per_class} labels per class"
    else:
        labels, described = {"label_fraction": label_fraction}, f"{100 * label_fraction:g}% of the labels"
    # Each dataset is read once now, to check the settings that depend on its labels; the first row uses it.
    first_size = rows[0].input_format.image_size
    preloaded = {dataset: load_dataset(dataset, first_size, data_dir) for dataset, data_dir in datasets.items()}
    for dataset, splits in preloaded.items():
        check_labels(dataset, splits, label_fraction, labels_per_class, knn if "knn" in protocols else None)
    common = dict(labels=labels, precision=hardware.precision)
    cells = {
        (row.name, dataset, seed): _fingerprints(
            row, dataset, datasets[dataset], seed, protocols, recipes, scoring, common
        )
        for row in rows
        for dataset in datasets
        for seed in seeds
    }
    reported = {(row, dataset, name, seed) for (row, dataset, seed), values in cells.items() for name in values}
    check_output(Path(output_dir), reported, existing_results)
    check_writable(Path(output_dir))
    store = CellStore(Path(output_dir) / CELLS_FILE, write=rank_zero_only.rank == 0)
    keys = [key for values in cells.values() for _, key in values.values()]
    if rank_zero_only.rank == 0:
        reused = sum(key in store for key in keys)
        print(f"evaluation matrix: reusing {reused} of {len(keys)} values from {store.path}", file=sys.stderr)
    todo = sum(any(key not in store for _, key in values.values()) for values in cells.values())
    progress = tqdm(
        total=todo, desc="evaluation matrix", unit="cell", disable=rank_zero_only.rank != 0, file=sys.stderr
    )
    results: list[Result] = []
    losses: dict[tuple[str, str, str, int], list[float]] = {}
    all_stages = "layerwise" in protocols or ("transferability" in protocols and scoring.layers)
    for row in rows:
        for dataset, data_dir in datasets.items():
            splits, cache = None, None
            for seed in seeds:
                values = cells[(row.name, dataset, seed)]
                # A list, in the config's order: every rank must run the protocols (their Trainers) alike.
                missing = [name for name, (protocol, key) in values.items() if not _stored(store, protocol, key)]
                pending = list(dict.fromkeys(values[name][0] for name in missing))
                if pending:
                    cell_name = f"{row.name} on {dataset}, seed {seed}"
                    progress.set_postfix_str(cell_name)
                    if splits is None and row.input_format.image_size == first_size:
                        splits = preloaded.get(dataset)
                    if splits is None:
                        splits = load_dataset(dataset, row.input_format.image_size, data_dir)
                    network = row.network(seed)
                    if cache is None or cache.network is not network:
                        cache = FeatureCache(network, hardware, all_stages=all_stages)
                    task = _task(splits, row, label_fraction, labels_per_class, seed)
                    cell = _evaluate_cell(cache, task, pending, missing, seed, recipes, scoring, hardware, cell_name)
                    for name, value, example_losses in cell:
                        store.add(
                            values[name][1],
                            value,
                            example_losses,
                            checkpoint=row.name,
                            dataset=dataset,
                            protocol=name,
                            seed=seed,
                        )
                    progress.update()
                for name, (_, key) in values.items():
                    results.append(Result(row.name, dataset, name, seed, store[key]))
                    if key in store.losses:
                        losses[(row.name, dataset, name, seed)] = store.losses[key]
        preloaded.clear()  # read for the first row; later rows of another input size read their own
    progress.close()
    if rank_zero_only.rank == 0:
        costs = _row_costs(rows, seeds[0], hardware) if row_costs else []
        report = write_report(
            results, Path(output_dir), described, wandb_project, wandb_offline, losses, scoring, costs
        )
        print(report)
    return results


def _row_costs(rows: list[Representation], seed: int, hardware: Hardware) -> list[str]:
    device = device_of(hardware.accelerator)
    costs = {row.name: measure(row.network(seed), row.input_format.image_size, device) for row in rows}
    return cost_table(costs, device)


def _fingerprints(row: Representation, dataset: str, data_dir, seed: int, protocols, recipes, scoring, common) -> dict:
    """value name -> (protocol, fingerprint) of one cell; a fingerprint covers all that the value depends on."""
    return {
        name: (
            protocol,
            fingerprint(
                representation=row.source,
                dataset=dataset,
                data_dir=None if data_dir is None else str(Path(data_dir).resolve()),
                protocol=name,
                recipe=asdict(recipes[protocol]) if protocol in recipes else None,
                seed=seed,
                **common,
            ),
        )
        for protocol in _protocols_of(row, protocols, recipes["linear"])
        for name in _value_names(protocol, row, scoring)
    }


def _protocols_of(row: Representation, protocols, linear: LinearRecipe) -> list[str]:
    """The protocols that apply to ``row``: raw pixels and dictionaries have no network to train or probe per layer."""
    if row.architecture is not None:
        return list(protocols)
    return [p for p in protocols if p in FEATURE_PROTOCOLS or (p == "linear" and linear.cache_features)]


def _announce_protocols_that_do_not_apply(rows: list[Representation], protocols, linear: LinearRecipe) -> None:
    for row in rows:
        left_out = [protocol for protocol in protocols if protocol not in _protocols_of(row, protocols, linear)]
        if left_out and rank_zero_only.rank == 0:
            print(
                f"{row.name}: {', '.join(left_out)} {'does' if len(left_out) == 1 else 'do'} not apply to it "
                "(it has no network to train, fine-tune or probe per layer); those columns stay empty for it",
                file=sys.stderr,
            )


def _value_names(protocol: str, row: Representation, scoring: TransferabilityRecipe) -> list[str]:
    if protocol == "layerwise":
        return [f"layer{stage}" for stage in range(1, row.stages + 1)]
    if protocol == "transferability":
        names = [name for score in scoring.score_names() for name in (score_name(score), seconds_name(score))]
        if scoring.layers:  # the last stage's features are the backbone's: scored already
            names += [layer_score_name(s, stage) for stage in range(1, row.stages) for s in scoring.score_names()]
        return names
    return [protocol]


def _evaluate_cell(
    cache: FeatureCache,
    task: Task,
    protocols: list[str],
    missing: set[str],
    seed: int,
    recipes: dict,
    scoring: TransferabilityRecipe,
    hardware: Hardware,
    cell_name: str,
):
    """Yield ``(value name, value, per-example test losses or None)`` for the ``missing`` values of one cell."""
    backbone, linear = cache.network, recipes["linear"]
    backbone.eval()
    wants_features = {"knn", "logistic", "logme", "layerwise", "transferability"} & set(protocols) or (
        "linear" in protocols and linear.cache_features
    )
    if wants_features:
        train_features, train_labels = cache.features("train", task.images("train"), tuple(task.train_indices.tolist()))
        test_features, test_labels = cache.features("test", task.images("test"))
        train, test = (train_features[-1], train_labels), (test_features[-1], test_labels)
    for protocol in protocols:
        if protocol == "knn":
            yield "knn", knn_accuracy(train, test, task.num_classes, recipes["knn"]), None
        elif protocol == "logistic":
            yield "logistic", *_trained(logistic_accuracy(train, test, task.num_classes, recipes["logistic"]))
        elif protocol == "linear" and linear.cache_features:
            yield "linear", *_trained(linear_on_features(train, test, task.num_classes, linear, hardware, seed))
        elif protocol == "linear":
            yield "linear", *_trained(linear_on_images(backbone, task, linear, hardware, seed))
        elif protocol == "logme":
            yield "logme", logme(*train), None
        elif protocol == "layerwise":
            for stage, (stage_train, stage_test) in enumerate(zip(train_features, test_features), start=1):
                outcome = linear_on_features(
                    (stage_train, train_labels), (stage_test, test_labels), task.num_classes, linear, hardware, seed
                )
                yield f"layer{stage}", outcome.accuracy, None
        elif protocol == "finetune":
            yield "finetune", *_trained(fine_tune(backbone, task, recipes["finetune"], hardware, seed))
        elif protocol == "transferability":
            for score in scoring.score_names():
                if score_name(score) in missing or seconds_name(score) in missing:
                    value, seconds = _timed_score(score, train_features[-1], train_labels, cell_name)
                    yield score_name(score), value, None
                    yield seconds_name(score), seconds, None
                for stage, features in enumerate(train_features[:-1] if scoring.layers else [], start=1):
                    if layer_score_name(score, stage) in missing:
                        value, _ = _timed_score(score, features, train_labels, f"{cell_name}, stage {stage}")
                        yield layer_score_name(score, stage), value, None


def _stored(store: CellStore, protocol: str, key: str) -> bool:
    """Whether ``store`` holds the value, and for a trained protocol its per-example losses (older cells lack them)."""
    return key in store and (protocol not in TRAINED_PROTOCOLS or key in store.losses)


def _trained(outcome) -> tuple[float, list[float]]:
    return outcome.accuracy, outcome.losses.tolist()


def _timed_score(score: str, features, labels, cell_name: str) -> tuple[float, float]:
    """``(value, seconds)`` of one score; a score that cannot be computed on these features is NaN, said once.

    Refused input and the numerical failures of a fit (a singular matrix, an ill-defined
    mixture covariance: ``ValueError`` from scikit-learn) count; any other error is a bug and propagates.
    """
    started = time.perf_counter()
    try:
        value = SCORES[score](features, labels)
    except (ConfigurationError, ValueError, np.linalg.LinAlgError, torch.linalg.LinAlgError) as error:
        value = float("nan")
        if rank_zero_only.rank == 0:
            print(f"transferability: {score} of {cell_name} recorded as NaN: {error}", file=sys.stderr)
    return value, time.perf_counter() - started


def _task(splits, row: Representation, label_fraction: float, labels_per_class: int | None, seed: int) -> Task:
    """``row`` on one dataset: the labelled subset that ``seed`` draws, images in the row's input format."""
    labels = labels_of(splits.train)
    if labels_per_class is not None:
        indices = balanced_subset(labels, labels_per_class, seed)
    else:
        indices = label_fraction_subset(labels, label_fraction, seed)
    return Task(
        splits.train,
        splits.test,
        indices,
        splits.num_classes,
        crop_fraction=splits.crop_fraction,
        **row.input_format.as_dict(),
    )


def main(arguments: list[str]) -> None:
    """Evaluate checkpoints on datasets by kNN, linear probes, fine-tuning, layer-wise probe and LogME."""
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # one trainer per cell: no banners
    use_unique_keys_loader()
    CLI(
        evaluate_matrix,
        args=arguments,
        as_positional=False,
        parser_class=EvaluateParser,
        parser_mode=UNIQUE_KEYS_MODE,
    )
