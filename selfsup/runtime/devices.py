"""Refuse a device request this machine cannot meet, before any process is started.

Lightning checks CUDA requests itself but with a traceback, and starts any number of
CPU processes: ``devices: 64`` on a 2-core machine would run 64 DDP ranks.
"""

import os

import torch

from selfsup.errors import ConfigurationError


def check_devices(accelerator: str | None, devices) -> None:
    """Raise :class:`ConfigurationError` when ``devices`` exceeds what ``accelerator`` has here."""
    accelerator = accelerator or "auto"
    if not isinstance(accelerator, str):
        return
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda"):
        available, unit = torch.cuda.device_count(), "CUDA GPUs"
    elif accelerator == "cpu":
        available, unit = os.cpu_count() or 1, "CPU cores"
    else:
        return
    requested = _count(devices, available)
    if available == 0:
        raise ConfigurationError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is visible here "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
            "run on a GPU node or set trainer.accelerator: cpu."
        )
    if requested is not None and requested > available:
        raise ConfigurationError(
            f"trainer.devices asks for {requested} {accelerator} devices but this machine has {available} {unit}; "
            f"set trainer.devices to at most {available} (or more nodes with trainer.num_nodes)."
        )


def _count(devices, available: int) -> int | None:
    if isinstance(devices, str):
        devices = devices.strip()
        if devices in ("auto", "-1"):
            return None
        if "," in devices:
            return len([d for d in devices.split(",") if d.strip()])
        devices = int(devices) if devices.isdigit() else None
    if isinstance(devices, int):
        return None if devices == -1 else devices
    if isinstance(devices, (list, tuple)):
        return len(devices)
    return None
