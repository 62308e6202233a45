"""What each row of the matrix costs to run: its parameters and its inference speed, side by side.

A distilled student is worth its accuracy only beside its price: the report lists, for every
row, the parameters of its network and the images per second of a forward pass (batch
:data:`BATCH`, the row's input size, float32, in eval mode without gradients, on the first
device the matrix runs on, one thread on a CPU; the fastest of repeated passes), timed one row
after another in the same process, so the ratios between rows mean something even on a shared machine; the absolute
numbers are those of this machine now, and a rerun measures them again.
"""

import time
from dataclasses import dataclass

import torch
from torch import nn

BATCH = 64
MIN_PASSES = 3
MIN_SECONDS = 0.25


@dataclass(frozen=True)
class RowCost:
    parameters: int
    images_per_second: float


def parameter_count(network: nn.Module) -> int:
    """Parameters and persistent buffers that hold weights (a dictionary's atoms count; BN statistics do not)."""
    atoms = getattr(network, "atoms", None)
    return sum(parameter.numel() for parameter in network.parameters()) + (0 if atoms is None else atoms.numel())


@torch.no_grad()
def measure(network: nn.Module, image_size: int, device: torch.device, channels: int = 3) -> RowCost:
    """Parameters and the images/s of the fastest forward pass, after one warm-up.

    Passes repeat until :data:`MIN_PASSES` of them and :data:`MIN_SECONDS` have gone by; the
    fastest is the one least disturbed by the machine's other work (``timeit``'s advice).
    """
    was_training = network.training
    original = next((tensor.device for tensor in network.state_dict().values()), torch.device("cpu"))
    network.eval().to(device)
    images = torch.randn(BATCH, channels, image_size, image_size, generator=torch.Generator().manual_seed(0))
    images = images.to(device)
    seconds: list[float] = []
    threads = torch.get_num_threads()
    if device.type == "cpu":  # one thread: a busy core stalls no thread barrier, so rows compare on a shared machine
        torch.set_num_threads(1)
    try:
        network(images)
        while len(seconds) < MIN_PASSES or sum(seconds) < MIN_SECONDS:
            _synchronise(device)
            started = time.perf_counter()
            network(images)
            _synchronise(device)
            seconds.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
        network.train(was_training).to(original)
    return RowCost(parameter_count(network), BATCH / min(seconds))


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_of(accelerator: str) -> torch.device:
    """The device a matrix of ``accelerator`` runs its first rank on."""
    wants_gpu = accelerator in ("gpu", "cuda") or accelerator == "auto" and torch.cuda.is_available()
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


def cost_table(costs: dict[str, RowCost], device: torch.device) -> list[str]:
    """The report's section: a row per network, parameters and images/s."""
    where = "one CPU thread" if device.type == "cpu" else device.type
    lines = [
        f"**Cost of each row** (parameters; images/s of the fastest float32 forward pass at batch {BATCH} on "
        f"{where}, measured one row after another in this run)",
        "",
        "| row | parameters | images/s |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {cost.parameters:,} | {cost.images_per_second:,.0f} |" for name, cost in costs.items()]
    return lines
