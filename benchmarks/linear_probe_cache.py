"""How much faster is the linear probe on cached features than with the backbone in the loop?

Both train the same linear head with the same recipe (no augmentation) on the same
images; the uncached probe runs the frozen backbone on every batch of every epoch,
the cached one extracts the features once and then trains on them. Measured side by
side in one run; prints JSON and a markdown table.

    python benchmarks/linear_probe_cache.py                       # ResNet-18 at 32 px on digits, CPU
    python benchmarks/linear_probe_cache.py --backbone small_conv --image-size 16
    python benchmarks/linear_probe_cache.py --accelerator gpu
"""

import argparse
import json
import logging
import time
import warnings

import pytorch_lightning as pl
import torch

from downstream.datasets import load_dataset
from downstream.extraction import extract
from downstream.hardware import Hardware
from downstream.protocols import Task, linear_on_features, linear_on_images
from downstream.recipes import LinearRecipe
from downstream.splits import labels_of
from selfsup.backbones import build_backbone
from selfsup.data import DigitsDataModule


class EpochTimer(pl.Callback):
    def __init__(self):
        self.durations: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.durations.append(time.perf_counter() - self._started)


def timed_hardware(hardware: Hardware, timer: EpochTimer) -> Hardware:
    """The same hardware, with the timer attached to every trainer it builds."""

    class Timed(Hardware):
        def trainer(self, **overrides):
            return super().trainer(callbacks=[timer], **overrides)

    return Timed(**{field: getattr(hardware, field) for field in hardware.__dataclass_fields__})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--accelerator", default="cpu")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    splits = load_dataset("digits", args.image_size)
    task = Task(
        splits.train,
        splits.test,
        torch.arange(len(labels_of(splits.train))),
        10,
        args.image_size,
        DigitsDataModule.mean,
        DigitsDataModule.std,
    )
    torch.manual_seed(0)
    backbone = build_backbone(args.backbone, **({"cifar_stem": True} if args.backbone.startswith("resnet") else {}))
    recipe = LinearRecipe(
        epochs=args.epochs, batch_size=128, lr=0.1, schedule="cosine", augment=False, standardize=True
    )
    hardware = Hardware(accelerator=args.accelerator, batch_size=256)

    uncached_timer = EpochTimer()
    uncached_accuracy = linear_on_images(backbone, task, recipe, timed_hardware(hardware, uncached_timer), seed=0)

    started = time.perf_counter()
    (train_features,), train_labels = extract(backbone, task.images("train"), hardware)
    (test_features,), test_labels = extract(backbone, task.images("test"), hardware)
    extraction = time.perf_counter() - started
    cached_timer = EpochTimer()
    cached_accuracy = linear_on_features(
        (train_features, train_labels),
        (test_features, test_labels),
        10,
        recipe,
        timed_hardware(hardware, cached_timer),
        seed=0,
    )

    uncached_epoch = sum(uncached_timer.durations) / len(uncached_timer.durations)
    cached_epoch = sum(cached_timer.durations) / len(cached_timer.durations)
    result = {
        "backbone": args.backbone,
        "image_size": args.image_size,
        "train_images": len(task.train_indices),
        "epochs": args.epochs,
        "uncached_epoch_s": round(uncached_epoch, 4),
        "cached_epoch_s": round(cached_epoch, 4),
        "extraction_s": round(extraction, 3),
        "speedup_per_epoch": round(uncached_epoch / cached_epoch, 1),
        "speedup_100_epochs_with_extraction": round(100 * uncached_epoch / (extraction + 100 * cached_epoch), 1),
        "uncached_accuracy": round(uncached_accuracy, 2),
        "cached_accuracy": round(cached_accuracy, 2),
    }
    print(json.dumps(result))
    print(
        "\n| backbone | s/epoch uncached | s/epoch cached | extraction (s) | per epoch | 100 epochs with extraction |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| {args.backbone} {args.image_size}px | {uncached_epoch:.3f} | {cached_epoch:.4f} | {extraction:.2f} "
        f"| {result['speedup_per_epoch']}x | {result['speedup_100_epochs_with_extraction']}x |"
    )


if __name__ == "__main__":
    main()
