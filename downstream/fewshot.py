"""Few-label evaluation on the digits: the table ``make demo`` prints.

Each representation is judged by a weighted kNN classifier and a linear probe
trained on ``labels_per_class`` labelled images per class of the digits train
split, and scored on the test split. Every seed draws another labelled subset
(and, for the random-initialisation baseline, another random backbone); the
table reports mean ± standard deviation over seeds, in percent.

    python -m downstream.fewshot --checkpoint simclr=runs/demo/simclr/backbone.pt
"""

import argparse
import statistics
import sys
from pathlib import Path

import torch

from downstream.features import extract_features
from downstream.linear import LinearProbe
from downstream.splits import balanced_subset
from selfsup.backbones import build_backbone
from selfsup.checkpoints import load_backbone
from selfsup.data import DigitsDataModule, digits_split, eval_transform
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
    """Rows ``name -> {"knn": [acc per seed], "linear": [...]}`` for pixels, random init and each checkpoint."""
    loaded = {name: load_backbone(path) for name, path in checkpoints.items()}
    metadata = next(iter(loaded.values()))[1] if loaded else {}
    image_size = metadata.get("image_size", 16)
    mean, std = metadata.get("mean", DigitsDataModule.mean), metadata.get("std", DigitsDataModule.std)
    transform = eval_transform(image_size, mean, std)
    splits = [digits_split(split, image_size) for split in ("train", "test")]

    def pixels(dataset):
        images = torch.stack([transform(image) for image in dataset.images])
        return images.flatten(1), dataset.labels

    rows: dict[str, dict[str, list[float]]] = {}

    def add(name: str, seed: int, train, test) -> None:
        result = score(train, test, per_class, seed, knn_k, knn_temperature)
        row = rows.setdefault(name, {"knn": [], "linear": []})
        for protocol, accuracy in result.items():
            row[protocol].append(accuracy)

    raw = [pixels(dataset) for dataset in splits]
    for seed in seeds:
        add("raw pixels", seed, *raw)
    if loaded:
        architecture = metadata["backbone"]
        for seed in seeds:
            torch.manual_seed(seed)
            random_backbone = build_backbone(architecture, **metadata["backbone_kwargs"])
            add(f"random init ({architecture})", seed, *[extract_features(random_backbone, d, transform) for d in splits])
    for name, (backbone, _) in loaded.items():
        print(f"evaluating {name} ...", file=sys.stderr)
        features = [extract_features(backbone, dataset, transform) for dataset in splits]
        for seed in seeds:
            add(name, seed, *features)
    return rows


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
