"""Pick the torch device a command runs on."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` takes CUDA when PyTorch sees it, else the CPU; ``cuda`` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but PyTorch sees no CUDA device")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r}: use auto, cpu or cuda")
    return torch.device(name)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask under taskset, cgroups or Slurm)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def fitted_workers(requested: int, cores: int | None = None) -> int:
    """At most ``cores − 1`` DataLoader workers (one core stays with the training process), never below 0."""
    cores = usable_cores() if cores is None else cores
    return max(0, min(requested, cores - 1))
