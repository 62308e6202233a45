"""Time and peak memory of NT-Xent against batch size and of MoCo's InfoNCE against queue size.

Each setting runs in a fresh process: forward and backward of the loss on random
normalised 128-d embeddings (as the projection heads give), the median time over
repeats, and the peak memory the loss adds above its inputs (CUDA: the allocator's
peak; CPU: the growth of the process's peak resident set during the first call).
Prints JSON lines and markdown tables.

    python benchmarks/contrastive_losses.py
    python benchmarks/contrastive_losses.py --device cuda --batch-sizes 256 1024 4096 8192
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from selfsup.losses import InfoNCELoss, NTXentLoss

DIM = 128


def measure(loss_name: str, batch_size: int, queue_size: int, device: str, repeats: int) -> dict:
    torch.manual_seed(0)
    embeddings = [F.normalize(torch.randn(batch_size, DIM, device=device), dim=1).requires_grad_() for _ in range(2)]
    if loss_name == "nt_xent":
        criterion, extra = NTXentLoss(0.5), ()
    else:
        criterion, extra = InfoNCELoss(0.2), (F.normalize(torch.randn(queue_size, DIM, device=device), dim=1),)

    def step() -> None:
        criterion(*embeddings, *extra).backward()
        _synchronize(device)

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        step()
        peak = torch.cuda.max_memory_allocated() - baseline
    else:
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        durations.append(time.perf_counter() - started)
    return {
        "loss": loss_name,
        "batch_size": batch_size,
        "queue_size": queue_size if loss_name == "info_nce" else None,
        "ms": round(1000 * statistics.median(durations), 2),
        "peak_mib": round(peak / 2**20, 1),
    }


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def in_fresh_process(loss_name: str, batch_size: int, queue_size: int, args) -> dict:
    command = [sys.executable, __file__, "--one", loss_name, str(batch_size), str(queue_size)]
    command += ["--device", args.device, "--repeats", str(args.repeats)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--queue-sizes", type=int, nargs="+", default=[4096, 16384, 65536])
    parser.add_argument("--moco-batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        loss_name, batch_size, queue_size = args.one[0], int(args.one[1]), int(args.one[2])
        print(json.dumps(measure(loss_name, batch_size, queue_size, args.device, args.repeats)))
        return

    nt_xent = [in_fresh_process("nt_xent", size, 0, args) for size in args.batch_sizes]
    info_nce = [in_fresh_process("info_nce", args.moco_batch_size, size, args) for size in args.queue_sizes]
    for row in nt_xent + info_nce:
        print(json.dumps(row))
    print(f"\nNT-Xent, {DIM}-d, {args.device}\n\n| batch | ms (fwd+bwd) | peak MiB |\n|---:|---:|---:|")
    for row in nt_xent:
        print(f"| {row['batch_size']} | {row['ms']} | {row['peak_mib']} |")
    print(f"\nInfoNCE, batch {args.moco_batch_size}, {DIM}-d, {args.device}\n")
    print("| queue | ms (fwd+bwd) | peak MiB |\n|---:|---:|---:|")
    for row in info_nce:
        print(f"| {row['queue_size']} | {row['ms']} | {row['peak_mib']} |")


if __name__ == "__main__":
    main()
