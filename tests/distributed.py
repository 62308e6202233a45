"""Run a function on two CPU processes joined by a gloo process group."""

import socket

import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _entry(rank: int, world_size: int, port: int, function, args) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        function(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def run_on_two_processes(function, *args) -> None:
    """Call ``function(rank, world_size, *args)`` on ranks 0 and 1; it must be importable."""
    mp.spawn(_entry, args=(2, free_port(), function, args), nprocs=2, join=True)
