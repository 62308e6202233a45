"""The evaluation matrix: checkpoints x datasets x protocols, in one command.

    python -m downstream.evaluate --config configs/downstream/digits.yaml
    python -m downstream.evaluate --checkpoints '{simclr: runs/demo/simclr/backbone.pt}' \\
        --datasets '{digits: null, cifar10: /data/cifar10}' --protocols '[knn, linear, logme]'

Every key of the YAML file is an argument of :func:`evaluate_matrix`. Each backbone
sees each dataset at the input size and normalisation it was pretrained with. Writes
``results.csv``, ``results.md`` and ``results.png`` into ``output_dir`` (rank 0 only),
prints the table, and logs it to W&B when ``wandb_project`` is set.

Protocols: ``knn`` (weighted kNN, top-1 %), ``linear`` (linear probe, top-1 %),
``finetune`` (top-1 %), ``layerwise`` (a linear probe on every stage's pooled
features, top-1 %), ``logme`` (LogME of the frozen features; no training). When both
``logme`` and ``linear`` run, the table reports per dataset how well LogME ranks the
checkpoints against the linear probe (Kendall's tau).
"""

import logging
import sys
import warnings
from pathlib import Path
from typing import Literal

import torch
from pytorch_lightning.utilities import rank_zero_only
from tqdm import tqdm

from downstream.datasets import load_dataset
from downstream.extraction import extract
from downstream.hardware import Hardware
from downstream.logme import logme
from downstream.protocols import Task, fine_tune, knn_accuracy, linear_on_features, linear_on_images
from downstream.recipes import FinetuneRecipe, KNNRecipe, LinearRecipe
from downstream.report import Result, write_report
from downstream.splits import balanced_subset, label_fraction_subset, labels_of
from selfsup.backbones import build_backbone
from selfsup.checkpoints import load_backbone
from selfsup.devices import check_devices
from selfsup.errors import ConfigurationError

Protocol = Literal["knn", "linear", "logme", "layerwise", "finetune"]
DEFAULT_FORMAT = {"image_size": 32, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}


def evaluate_matrix(
    checkpoints: dict[str, str],
    datasets: dict[str, str | None],
    protocols: list[Protocol] = ("knn", "linear", "logme"),
    output_dir: str = "runs/eval",
    label_fraction: float = 1.0,
    labels_per_class: int | None = None,
    seed: int = 0,
    random_init_baseline: bool = True,
    knn: KNNRecipe = KNNRecipe(),
    linear: LinearRecipe = LinearRecipe(),
    finetune: FinetuneRecipe = FinetuneRecipe(),
    hardware: Hardware = Hardware(),
    wandb_project: str | None = None,
    wandb_offline: bool = True,
) -> list[Result]:
    """Evaluate every checkpoint on every dataset with every protocol.

    Args:
        checkpoints: name -> path of a ``backbone.pt`` export or a Lightning checkpoint.
        datasets: name (digits, digits_transfer, cifar10, cifar100, stl10, imagefolder) ->
            its data directory (``null`` for the embedded digits).
        protocols: which of knn, linear, logme, layerwise, finetune to run.
        output_dir: where results.csv, results.md and results.png are written.
        label_fraction: the class-balanced fraction of training labels used (0.01 = 1%).
        labels_per_class: instead of a fraction, this many labels per class.
        seed: draws the labelled subset, the random baseline and the training order.
        random_init_baseline: add a randomly initialised backbone of each architecture.
    """
    if not checkpoints or not datasets:
        raise ConfigurationError("give at least one checkpoint and one dataset (see configs/downstream/).")
    if not 0 < label_fraction <= 1 or (labels_per_class is not None and labels_per_class < 1):
        raise ConfigurationError(
            f"label_fraction must lie in (0, 1] (1% is 0.01) and labels_per_class be >= 1; "
            f"got {label_fraction} and {labels_per_class}."
        )
    check_devices(hardware.accelerator, hardware.devices)
    backbones = {name: load_backbone(path) for name, path in checkpoints.items()}
    if random_init_baseline:
        backbones |= _random_baselines(backbones, seed)
    cells = [(name, dataset) for name in backbones for dataset in datasets]
    results: list[Result] = []
    progress = tqdm(cells, desc="evaluation matrix", unit="cell", disable=rank_zero_only.rank != 0, file=sys.stderr)
    for name, dataset in progress:
        progress.set_postfix_str(f"{name} on {dataset}")
        backbone, metadata = backbones[name]
        task = _task(dataset, datasets[dataset], metadata, label_fraction, labels_per_class, seed)
        for protocol, value in _evaluate_cell(backbone, task, protocols, seed, knn, linear, finetune, hardware):
            results.append(Result(name, dataset, protocol, value))
    if rank_zero_only.rank == 0:
        print(write_report(results, Path(output_dir), wandb_project, wandb_offline))
    return results


def _evaluate_cell(backbone, task: Task, protocols, seed, knn, linear, finetune, hardware):
    backbone.eval()
    wants_features = {"knn", "logme", "layerwise"} & set(protocols) or ("linear" in protocols and linear.cache_features)
    if wants_features:
        all_stages = "layerwise" in protocols
        train_features, train_labels = extract(backbone, task.images("train"), hardware, all_stages)
        test_features, test_labels = extract(backbone, task.images("test"), hardware, all_stages)
        train, test = (train_features[-1], train_labels), (test_features[-1], test_labels)
    if "knn" in protocols:
        yield "knn", knn_accuracy(train, test, task.num_classes, knn)
    if "linear" in protocols:
        if linear.cache_features:
            yield "linear", linear_on_features(train, test, task.num_classes, linear, hardware, seed)
        else:
            yield "linear", linear_on_images(backbone, task, linear, hardware, seed)
    if "logme" in protocols:
        yield "logme", logme(*train)
    if "layerwise" in protocols:
        for stage, (stage_train, stage_test) in enumerate(zip(train_features, test_features), start=1):
            accuracy = linear_on_features(
                (stage_train, train_labels), (stage_test, test_labels), task.num_classes, linear, hardware, seed
            )
            yield f"layer{stage}", accuracy
    if "finetune" in protocols:
        yield "finetune", fine_tune(backbone, task, finetune, hardware, seed)


def _task(dataset: str, data_dir, metadata: dict, label_fraction, labels_per_class, seed) -> Task:
    input_format = {key: metadata.get(key, default) for key, default in DEFAULT_FORMAT.items()}
    splits = load_dataset(dataset, input_format["image_size"], data_dir)
    labels = labels_of(splits.train)
    if labels_per_class is not None:
        indices = balanced_subset(labels, labels_per_class, seed)
    else:
        indices = label_fraction_subset(labels, label_fraction, seed)
    return Task(
        splits.train, splits.test, indices, splits.num_classes, crop_fraction=splits.crop_fraction, **input_format
    )


def _random_baselines(backbones: dict, seed: int) -> dict:
    """One randomly initialised backbone per architecture and input format among the checkpoints."""
    baselines = {}
    for _, metadata in backbones.values():
        name = f"random init ({metadata['backbone']}, {metadata.get('image_size', '?')}px)"
        if name not in baselines:
            torch.manual_seed(seed)
            random_backbone = build_backbone(metadata["backbone"], **metadata["backbone_kwargs"])
            baselines[name] = (random_backbone, metadata)
    return baselines


def main(argv: list[str] | None = None) -> None:
    from jsonargparse import CLI

    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # the frozen backbone, on purpose
    try:
        CLI(evaluate_matrix, args=argv, as_positional=False)
    except ConfigurationError as error:
        print(f"downstream.evaluate: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
