"""Deterministic, resumable batch order.

The order of an epoch depends only on (seed, epoch): a resumed run skips the batches already
seen and then draws exactly the batches an uninterrupted run would have drawn. Under DDP each
rank takes an interleaved share of the same permutation, so the union over ranks is the
single-process epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if dataset_size < batch_size * world_size:
            raise ValueError(
                f"the split has {dataset_size} samples, fewer than one batch "
                f"({batch_size} per process × {world_size} processes)"
            )
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def __len__(self) -> int:
        """Batches per epoch for one rank (the last incomplete batch is dropped)."""
        return self.dataset_size // (self.batch_size * self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.dataset_size, generator=generator).tolist()
        else:
            order = list(range(self.dataset_size))
        global_batch = self.batch_size * self.world_size
        for b in range(self.start_batch, len(self)):
            chunk = order[b * global_batch : (b + 1) * global_batch]
            yield chunk[self.rank :: self.world_size]
