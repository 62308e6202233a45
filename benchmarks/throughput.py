"""Framework overhead: each method under this project's LightningModule against a bare loop.

Both sides train a fresh copy of the same model (same seed) on the same pre-made
batches of views, already on the device, so that data loading is out of the picture:

* **Lightning**: ``pl.Trainer.fit`` with this project's shell (base hooks, the
  non-finite guard, logging, the learning-rate schedule), no validation, no
  checkpointing, no progress bar;
* **bare**: a ``for`` loop calling the method's own ``training_step`` maths (its
  ``self.log`` calls have no trainer to log to and return at once), then
  ``zero_grad``, ``backward``, ``step`` of SGD with momentum, the schedule's step,
  and the EMA update of any momentum target (MoCo, BYOL). Deep InfoMax optimises by hand; its
  update step is replaced by the same three calls.

Images per second over the timed steps (after warm-up); the two sides alternate over
the repeats and the median is reported. ``--channels-last``, ``--compile`` and
``--precision bf16-mixed`` measure the switches of the same names. Prints JSON and a
markdown table.

    python benchmarks/throughput.py                                   # CPU, small conv, 32 px
    python benchmarks/throughput.py --accelerator gpu --backbone resnet18 --batch-size 256
"""

import argparse
import contextlib
import copy
import json
import logging
import statistics
import time
import warnings

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from selfsup.methods import AMDIM, BYOL, CPC, MAE, DenoisingAutoencoder, MoCo, MoCoV3, SimCLR
from selfsup.methods.deep_infomax import DeepInfoMax
from selfsup.methods.jigsaw import Jigsaw
from selfsup.methods.relative_position import RelativePosition
from selfsup.methods.rotation import RotationPrediction
from selfsup.schedules import warmup_cosine

METHODS = {
    "simclr": (SimCLR, {"projection_dim": 128}, 2, 32),
    "moco_v2": (MoCo, {"queue_size": 4096, "encoder_momentum": 0.99}, 2, 32),
    "rotation": (RotationPrediction, {}, 1, 32),
    "jigsaw": (Jigsaw, {"num_permutations": 100, "classifier_hidden_dim": 512}, 1, 36),
    "relative_position": (RelativePosition, {"classifier_hidden_dim": 512}, 1, 36),
    "dim": (DeepInfoMax, {"prior_weight": 0.0}, 1, 32),
    "moco_v3": (MoCoV3, {"projection_hidden_dim": 1024, "prediction_hidden_dim": 1024}, 2, 32),
    "byol": (BYOL, {"projection_hidden_dim": 1024, "prediction_hidden_dim": 1024}, 2, 32),
    "cpc": (CPC, {"grid_size": 5, "patch_size": 8, "patch_stride": 4, "prediction_steps": 3}, 1, 24),
    "amdim": (AMDIM, {"embedding_dim": 256}, 2, 32),
    "autoencoder": (DenoisingAutoencoder, {"image_size": 32}, 1, 32),
    "mae": (
        MAE,
        {"backbone": "vit_micro", "backbone_kwargs": {"image_size": 32}, "decoder_dim": 64, "decoder_heads": 4},
        1,
        32,
    ),
}


class FixedBatches(pl.LightningDataModule):
    def __init__(self, batches: list, batch_size: int) -> None:
        super().__init__()
        self.batches, self.batch_size = batches, batch_size

    def train_dataloader(self):
        return DataLoader(self.batches, batch_size=None, shuffle=False)


class StepClock(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        _synchronize(pl_module.device)
        self.times.append(time.perf_counter())


def build(method: str, args) -> pl.LightningModule:
    method_class, kwargs, _, _ = METHODS[method]
    torch.manual_seed(0)
    settings = dict(
        backbone=args.backbone,
        backbone_kwargs={"width": args.width} if args.backbone == "small_conv" else {"cifar_stem": True},
        lr=0.1,
        warmup_epochs=0,
        channels_last=args.channels_last,
        compile_backbone=args.compile,
    )
    return method_class(**{**settings, **kwargs})  # a method's own backbone (MAE's ViT) replaces --backbone


def make_batches(method: str, args, device) -> list:
    _, _, num_views, image_size = METHODS[method]
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(args.distinct_batches):
        views = [torch.randn(args.batch_size, 3, image_size, image_size, generator=generator) for _ in range(num_views)]
        labels = torch.randint(0, 10, (args.batch_size,), generator=generator)
        batches.append(([view.to(device) for view in views], labels.to(device)))
    return batches


def lightning_images_per_s(method: str, batches: list, args) -> float:
    model, clock = build(method, args), StepClock()
    steps = args.warmup + args.steps
    cycled = [batches[step % len(batches)] for step in range(steps)]
    trainer = pl.Trainer(
        accelerator=args.accelerator,
        devices=1,
        precision=args.precision,
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(model, datamodule=FixedBatches(cycled, args.batch_size))
    return args.batch_size * args.steps / (clock.times[-1] - clock.times[args.warmup - 1])


def bare_images_per_s(method: str, batches: list, args, device) -> float:
    model = build(method, args).to(device)
    model.apply_speed_switches()
    model.train()
    optimised = [p for name, p in model.named_parameters() if p.requires_grad and "prior_matching" not in name]
    optimizer = torch.optim.SGD(optimised, lr=0.1, momentum=0.9, weight_decay=1e-6)
    total = args.warmup + args.steps
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, 0, total, 0.0))

    def update(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()

    if isinstance(model, DeepInfoMax):
        model._optimise = update
    autocast = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if args.precision == "bf16-mixed"
        else contextlib.nullcontext()
    )
    times = []
    for step in range(total):
        batch = batches[step % len(batches)]
        with autocast:
            loss = model.training_step(batch, step)
        if loss is not None:
            update(loss)
        model.update_momentum_targets(0.99)
        _synchronize(device)
        times.append(time.perf_counter())
    return args.batch_size * args.steps / (times[-1] - times[args.warmup - 1])


def _synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--backbone", default="small_conv")
    parser.add_argument("--width", type=int, default=64, help="small_conv width")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--distinct-batches", type=int, default=4)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    device = torch.device("cuda" if args.accelerator in ("gpu", "cuda") else "cpu")

    rows = []
    for method in args.methods:
        batches = make_batches(method, args, device)
        measured = {"lightning": [], "bare": []}
        for _ in range(args.repeats):
            measured["bare"].append(bare_images_per_s(method, copy.copy(batches), args, device))
            measured["lightning"].append(lightning_images_per_s(method, batches, args))
        bare, lightning = statistics.median(measured["bare"]), statistics.median(measured["lightning"])
        rows.append(
            {
                "method": method,
                "bare_images_per_s": round(bare, 1),
                "lightning_images_per_s": round(lightning, 1),
                "overhead_percent": round(100 * (bare / lightning - 1), 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    settings = f"{args.backbone} (width {args.width}), batch {args.batch_size}, {args.accelerator}, {args.precision}"
    settings += ", channels_last" * args.channels_last + ", compiled" * args.compile
    print(f"\n{settings}\n\n| method | bare loop (img/s) | Lightning (img/s) | overhead |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['method']} | {row['bare_images_per_s']:,.0f} | {row['lightning_images_per_s']:,.0f} "
            f"| {row['overhead_percent']:+.1f}% |"
        )


if __name__ == "__main__":
    main()
