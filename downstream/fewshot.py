"""Few-label evaluation on the digits: the table ``make demo`` prints.

Each representation is judged by a weighted kNN classifier and a linear probe
trained on ``labels_per_class`` labelled images per class of the digits train
split, and scored on the test split. Every seed draws another labelled subset
(and, for the random-initialisation baseline, another random backbone); the
table reports mean ± standard deviation over seeds, in percent.

    python -m downstream.fewshot --checkpoint simclr=runs/demo/simclr/backbone.pt
"""

import argparse
import logging
import statistics
import sys
from pathlib import Path

import torch

from downstream.extraction import extract
from downstream.hardware import Hardware
from downstream.linear import LinearProbe
from downstream.splits import balanced_subset
from selfsup.backbones import build_backbone
from selfsup.checkpoints import load_backbone
from selfsup.data import DigitsDataModule, digits_split, eval_transform
from selfsup.data.datasets import IndexedDataset
from selfsup.errors import ConfigurationError
from selfsup.evaluation import weighted_knn_predict

NUM_CLASSES = 10


def score(train, test, per_class: int, seed: int, knn_k: int, knn_temperature: float) -> dict[str, float]:
    """kNN and linear-probe accuracy (%) with ``per_class`` labels per class drawn by ``seed``."""
    (train_features, train_labels), (test_features, test_labels) = train, test
    subset = balanced_subset(train_labels, per_class, seed)
    features, labels = train_features[subset], train_labels[subset]
    knn = weighted_knn_predict(features, labels, test_features, NUM_CLASSES, knn_k, knn_temperature)
    linear = LinearProbe(NUM_CLASSES).fit(features, labels).predict(test_features)
    return {
        "knn": 100.0 * (knn == test_labels).float().mean().item(),
        "linear": 100.0 * (linear == test_labels).float().mean().item(),
    }


def evaluate(checkpoints: dict[str, str], per_class: int, seeds: list[int], knn_k: int, knn_temperature: float):
    """Rows ``name -> {"knn": [acc per seed], "linear": [...]}``.

    Each checkpoint sees the digits at the input size and normalisation it was trained
    with; for every architecture and input size among them, a randomly initialised
    network of that architecture (a new one per seed) is a baseline row, and raw pixels
    at the smallest size are the reference.
    """
    loaded = {name: load_backbone(path) for name, path in checkpoints.items()}
    rows: dict[str, dict[str, list[float]]] = {}

    def add(name: str, seed: int, train, test) -> None:
        row = rows.setdefault(name, {"knn": [], "linear": []})
        for protocol, accuracy in score(train, test, per_class, seed, knn_k, knn_temperature).items():
            row[protocol].append(accuracy)

    def input_format(metadata: dict):
        image_size = metadata.get("image_size", 16)
        transform = eval_transform(
            image_size, metadata.get("mean", DigitsDataModule.mean), metadata.get("std", DigitsDataModule.std)
        )
        return image_size, transform, [digits_split(split, image_size) for split in ("train", "test")]

    formats = {name: input_format(metadata) for name, (_, metadata) in loaded.items()}
    smallest = min((size for size, _, _ in formats.values()), default=16)
    _, transform, splits = input_format({"image_size": smallest})
    raw = [(torch.stack([transform(image) for image in d.images]).flatten(1), d.labels) for d in splits]
    for seed in seeds:
        add("raw pixels", seed, *raw)

    baselines = {}
    for name, (_, metadata) in loaded.items():
        key = (metadata["backbone"], formats[name][0])
        baselines.setdefault(key, (metadata["backbone_kwargs"], formats[name]))
    for (architecture, image_size), (kwargs, (_, transform, splits)) in baselines.items():
        for seed in seeds:
            torch.manual_seed(seed)
            random_backbone = build_backbone(architecture, **kwargs)
            features = [frozen_features(random_backbone, dataset, transform) for dataset in splits]
            add(f"random init ({architecture}, {image_size}px)", seed, *features)

    for name, (backbone, _) in loaded.items():
        print(f"evaluating {name} ...", file=sys.stderr)
        _, transform, splits = formats[name]
        features = [frozen_features(backbone, dataset, transform) for dataset in splits]
        for seed in seeds:
            add(name, seed, *features)
    return rows


def frozen_features(backbone, dataset, transform) -> tuple[torch.Tensor, torch.Tensor]:
    (features,), labels = extract(backbone, IndexedDataset(dataset, transform), Hardware(accelerator="cpu"))
    return features, labels


def markdown_table(rows, per_class: int, seeds: list[int]) -> str:
    def cell(values):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.1f} ± {spread:.1f}"

    lines = [
        f"Digits test split, {per_class} labels per class, mean ± std over seeds {seeds} (top-1 %)",
        "",
        "| representation | kNN | linear probe |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {cell(row['knn'])} | {cell(row['linear'])} |" for name, row in rows.items()]
    return "\n".join(lines)


def parse_checkpoint(text: str) -> tuple[str, str]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=parse_checkpoint, action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--knn-k", type=int, default=20)
    parser.add_argument("--knn-temperature", type=float, default=0.07)
    parser.add_argument("--output", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args(argv)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    try:
        rows = evaluate(dict(args.checkpoint), args.labels_per_class, args.seeds, args.knn_k, args.knn_temperature)
    except (ConfigurationError, ValueError) as error:
        print(f"downstream.fewshot: error: {error}", file=sys.stderr)
        sys.exit(2)
    table = markdown_table(rows, args.labels_per_class, args.seeds)
    print(table)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table + "\n")


if __name__ == "__main__":
    main()
