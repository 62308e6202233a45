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

Protocols: ``knn`` (weighted kNN, top-1 %), ``linear`` (linear probe by SGD, top-1 %),
``logistic`` (logistic regression by L-BFGS on the frozen features, top-1 %),
``finetune`` (top-1 %), ``layerwise`` (a linear probe on every stage's pooled
features, top-1 %), ``logme`` (LogME of the frozen features; no training). When both
``logme`` and ``linear`` run, the table reports per dataset how well LogME ranks the
checkpoints against the linear probe (Kendall's tau).
"""

import logging
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from jsonargparse import CLI
from pytorch_lightning.utilities import rank_zero_only
from tqdm import tqdm

from downstream.cells import CellStore, fingerprint
from downstream.datasets import check_dataset, load_dataset
from downstream.extraction import FeatureCache
from downstream.hardware import Hardware
from downstream.logme import logme
from downstream.protocols import (
    Task,
    fine_tune,
    knn_accuracy,
    linear_on_features,
    linear_on_images,
    logistic_accuracy,
)
from downstream.recipes import FinetuneRecipe, KNNRecipe, LinearRecipe, LogisticRecipe
from downstream.report import Result, write_report
from downstream.representations import (
    FEATURE_PROTOCOLS,
    Representation,
    checkpoint_rows,
    random_init_rows,
    raw_pixels_row,
)
from downstream.splits import balanced_subset, label_fraction_subset, labels_of
from selfsup.errors import ConfigurationError
from selfsup.runtime import check_devices

Protocol = Literal["knn", "linear", "logistic", "logme", "layerwise", "finetune"]


def evaluate_matrix(
    checkpoints: dict[str, str],
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
    hardware: Hardware = Hardware(),
    wandb_project: str | None = None,
    wandb_offline: bool = True,
) -> list[Result]:
    """Evaluate every checkpoint on every dataset with every protocol, once per seed.

    Args:
        checkpoints: name -> path of a ``backbone.pt`` export or a Lightning checkpoint.
        datasets: name (digits, digits_transfer, cifar10, cifar100, stl10, imagefolder) ->
            its data directory (``null`` for the embedded digits).
        protocols: which of knn, linear, logistic, logme, layerwise, finetune to run.
        output_dir: where cells.jsonl, results.csv, results.md and results.png are written.
        label_fraction: the class-balanced fraction of training labels used (0.01 = 1%).
        labels_per_class: instead of a fraction, this many labels per class.
        seeds: each draws the labelled subset, the training order and the random baselines;
            the tables report mean ± std over them.
        random_init_baseline: add a randomly initialised backbone of each architecture and input size.
        raw_pixels_baseline: add the flattened images as a row (feature protocols only).
    """
    if not checkpoints or not datasets:
        raise ConfigurationError("give at least one checkpoint and one dataset (see configs/downstream/).")
    if not 0 < label_fraction <= 1 or (labels_per_class is not None and labels_per_class < 1):
        raise ConfigurationError(
            f"label_fraction must lie in (0, 1] (1% is 0.01) and labels_per_class be >= 1; "
            f"got {label_fraction} and {labels_per_class}."
        )
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigurationError(f"seeds must list at least one seed, each once; got {list(seeds)}.")
    check_devices(hardware.accelerator, hardware.devices)
    for dataset, data_dir in datasets.items():
        check_dataset(dataset, data_dir)
    _check_writable(Path(output_dir))
    rows = checkpoint_rows(checkpoints)
    if random_init_baseline:
        rows += random_init_rows(rows)
    if raw_pixels_baseline:
        rows.append(raw_pixels_row(rows))
    recipes = {"knn": knn, "linear": linear, "logistic": logistic, "layerwise": linear, "finetune": finetune}
    if labels_per_class is not None:
        labels, described = {"labels_per_class": labels_per_class}, f"{labels_per_class} labels per class"
    else:
        labels, described = {"label_fraction": label_fraction}, f"{100 * label_fraction:g}% of the labels"
    common = dict(labels=labels, precision=hardware.precision)
    cells = {
        (row.name, dataset, seed): _fingerprints(row, dataset, datasets[dataset], seed, protocols, recipes, common)
        for row in rows
        for dataset in datasets
        for seed in seeds
    }
    store = CellStore(Path(output_dir) / "cells.jsonl", write=rank_zero_only.rank == 0)
    keys = [key for values in cells.values() for _, key in values.values()]
    if rank_zero_only.rank == 0:
        reused = sum(key in store for key in keys)
        print(f"evaluation matrix: reusing {reused} of {len(keys)} values from {store.path}", file=sys.stderr)
    todo = sum(any(key not in store for _, key in values.values()) for values in cells.values())
    progress = tqdm(
        total=todo, desc="evaluation matrix", unit="cell", disable=rank_zero_only.rank != 0, file=sys.stderr
    )
    results: list[Result] = []
    for row in rows:
        for dataset, data_dir in datasets.items():
            splits, cache = None, None
            for seed in seeds:
                values = cells[(row.name, dataset, seed)]
                pending = list(dict.fromkeys(protocol for protocol, key in values.values() if key not in store))
                if pending:
                    progress.set_postfix_str(f"{row.name} on {dataset}, seed {seed}")
                    if splits is None:
                        splits = load_dataset(dataset, row.input_format.image_size, data_dir)
                    network = row.network(seed)
                    if cache is None or cache.network is not network:
                        cache = FeatureCache(network, hardware, all_stages="layerwise" in protocols)
                    task = _task(splits, row, label_fraction, labels_per_class, seed)
                    for name, value in _evaluate_cell(cache, task, pending, seed, recipes, hardware):
                        store.add(
                            values[name][1], value, checkpoint=row.name, dataset=dataset, protocol=name, seed=seed
                        )
                    progress.update()
                results += [Result(row.name, dataset, name, seed, store[key]) for name, (_, key) in values.items()]
    progress.close()
    if rank_zero_only.rank == 0:
        print(write_report(results, Path(output_dir), described, wandb_project, wandb_offline))
    return results


def _check_writable(output_dir: Path) -> None:
    """Refuse an output directory that cannot be written before computing anything."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-check-"):
            pass
    except OSError as error:
        raise ConfigurationError(
            f"cannot write the results to output_dir={output_dir}: {error.strerror or error}; choose another one."
        ) from None


def _fingerprints(row: Representation, dataset: str, data_dir, seed: int, protocols, recipes, common) -> dict:
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
        for name in _value_names(protocol, row)
    }


def _protocols_of(row: Representation, protocols, linear: LinearRecipe) -> list[str]:
    """The protocols that apply to ``row``: raw pixels has no backbone to train, fine-tune or probe per layer."""
    if row.architecture is not None:
        return list(protocols)
    return [p for p in protocols if p in FEATURE_PROTOCOLS or (p == "linear" and linear.cache_features)]


def _value_names(protocol: str, row: Representation) -> list[str]:
    return [f"layer{stage}" for stage in range(1, row.stages + 1)] if protocol == "layerwise" else [protocol]


def _evaluate_cell(cache: FeatureCache, task: Task, protocols: list[str], seed: int, recipes: dict, hardware):
    """Yield ``(value name, value)`` for each protocol of ``protocols`` on one cell."""
    backbone, linear = cache.network, recipes["linear"]
    backbone.eval()
    wants_features = {"knn", "logistic", "logme", "layerwise"} & set(protocols) or (
        "linear" in protocols and linear.cache_features
    )
    if wants_features:
        train_features, train_labels = cache.features("train", task.images("train"), tuple(task.train_indices.tolist()))
        test_features, test_labels = cache.features("test", task.images("test"))
        train, test = (train_features[-1], train_labels), (test_features[-1], test_labels)
    for protocol in protocols:
        if protocol == "knn":
            yield "knn", knn_accuracy(train, test, task.num_classes, recipes["knn"])
        elif protocol == "logistic":
            yield "logistic", logistic_accuracy(train, test, task.num_classes, recipes["logistic"])
        elif protocol == "linear" and linear.cache_features:
            yield "linear", linear_on_features(train, test, task.num_classes, linear, hardware, seed)
        elif protocol == "linear":
            yield "linear", linear_on_images(backbone, task, linear, hardware, seed)
        elif protocol == "logme":
            yield "logme", logme(*train)
        elif protocol == "layerwise":
            for stage, (stage_train, stage_test) in enumerate(zip(train_features, test_features), start=1):
                accuracy = linear_on_features(
                    (stage_train, train_labels), (stage_test, test_labels), task.num_classes, linear, hardware, seed
                )
                yield f"layer{stage}", accuracy
        elif protocol == "finetune":
            yield "finetune", fine_tune(backbone, task, recipes["finetune"], hardware, seed)


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
    CLI(evaluate_matrix, args=arguments, as_positional=False)
