"""Views per second: per-sample torchvision in DataLoader workers against kornia on the batch.

Both paths make two SimCLR views (full CIFAR-strength augmentation) of the same
32x32 colour images with the same number of DataLoader workers. The per-sample path
augments each image in the workers (``augment_on: workers``); the batched path's
workers only collate uint8 images and the views are drawn for the whole batch on the
device (``augment_on: device``). Measured side by side, alternating, in one run; the
median of the repeats is reported. Prints JSON and a markdown table.

    python benchmarks/augmentation.py                       # CPU: batched views on the CPU
    python benchmarks/augmentation.py --device cuda --workers 8 --image-size 32
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from selfsup.data.augment import Augmentation, view_transform
from selfsup.data.batch_augment import BatchViewAugmentation
from selfsup.data.datasets import MultiViewDataset, TensorImageDataset

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def colour_images(count: int, size: int) -> TensorImageDataset:
    generator = torch.Generator().manual_seed(0)
    patches = torch.randint(0, 256, (count, 3, 8, 8), generator=generator).float()
    images = F.interpolate(patches, size=size, mode="bilinear", align_corners=False).round().clamp(0, 255)
    return TensorImageDataset(images.to(torch.uint8), torch.zeros(count, dtype=torch.long))


def per_sample_views(dataset, args) -> float:
    views = MultiViewDataset(dataset, [(view_transform(Augmentation(), args.image_size, MEAN, STD), 2)])
    loader = DataLoader(views, batch_size=args.batch_size, num_workers=args.workers, drop_last=True)
    started = time.perf_counter()
    images = 0
    for (view_a, view_b), _ in loader:
        view_a.to(args.device), view_b.to(args.device)
        images += len(view_a)
    _synchronize(args.device)
    return images / (time.perf_counter() - started)


def batched_views(dataset, args) -> float:
    augment = BatchViewAugmentation(Augmentation(), args.image_size, MEAN, STD).to(args.device)
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers, drop_last=True)
    started = time.perf_counter()
    images = 0
    for batch, _ in loader:
        batch = batch.to(args.device)
        augment(batch), augment(batch)
        images += len(batch)
    _synchronize(args.device)
    return images / (time.perf_counter() - started)


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    dataset = colour_images(args.images, args.image_size)
    measured = {"per_sample": [], "batched": []}
    batched_views(dataset, args)
    for _ in range(args.repeats):
        measured["per_sample"].append(per_sample_views(dataset, args))
        measured["batched"].append(batched_views(dataset, args))
    per_sample, batched = (statistics.median(measured[key]) for key in ("per_sample", "batched"))
    result = {
        "image_size": args.image_size,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "device": args.device,
        "per_sample_images_per_s": round(per_sample),
        "batched_images_per_s": round(batched),
        "speedup": round(batched / per_sample, 1),
    }
    print(json.dumps(result))
    print("\n| path | images/s (2 views each) |")
    print("|---|---:|")
    print(f"| per-sample torchvision v2, {args.workers} workers | {per_sample:,.0f} |")
    print(f"| batched kornia on {args.device}, {args.workers} workers | {batched:,.0f} ({result['speedup']}x) |")


if __name__ == "__main__":
    main()
