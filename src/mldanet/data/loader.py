"""The DataLoader every training-time pass uses (training steps and validation)."""

from __future__ import annotations

import signal

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mldanet.types import collate_samples


def ignore_interrupts_in_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a Ctrl-C reaches the whole process group; the main process
    stops the run, its workers must not die of it first. SIGTERM keeps its default (the loader's
    shutdown terminates stuck workers with it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def batch_loader(dataset: Dataset, batch_sampler: Sampler[list[int]], num_workers: int, device: torch.device) -> DataLoader:
    """Batches of :class:`mldanet.types.Batch` in ``batch_sampler``'s order, loaded by ``num_workers`` processes."""
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        collate_fn=collate_samples,
        pin_memory=device.type == "cuda",
        worker_init_fn=ignore_interrupts_in_worker if num_workers else None,
        # Workers are re-created each epoch so they pick up dataset.set_epoch().
        persistent_workers=False,
    )
