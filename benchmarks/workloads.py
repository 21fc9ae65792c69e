"""Workloads the benchmarks time: a trainer on a synthetic batch, FLOP counts, a conv-rate probe.

A synthetic batch (random images, KITTI-like intrinsics, a stereo transform, a sparse hint)
costs exactly what a real one does in the networks and losses; only the data loading, which
the benchmarks do not measure, is left out.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from mldanet.config import Config, config_from_dict
from mldanet.data.kitti import NORMALISED_FX, NORMALISED_FY
from mldanet.training.trainer import Trainer
from mldanet.types import STEREO, Batch

KITTI_FX, KITTI_FY = NORMALISED_FX, NORMALISED_FY  # docs/METHOD.md §6.2


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], None] = lambda: None) -> float:
    """Median wall time of ``run`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


CONV_PROBES = ((8, 48, 160), (16, 24, 80), (1, 192, 640))  # batch, height, width of the 64-channel features


def conv_rate(device: torch.device, repeats: int = 15) -> float:
    """FLOP/s of a 3×3 64→64 convolution: the best median over a few feature sizes (cache effects vary)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device)
    rates = []
    for batch, height, width in CONV_PROBES:
        features = torch.randn(batch, 64, height, width, device=device)
        with torch.no_grad():
            seconds = median_seconds(lambda: conv(features), repeats, warmup=5, sync=synchronizer(device))
        rates.append(2 * 64 * 64 * 9 * batch * height * width / seconds)
    return max(rates)


def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def training_config(
    variant: str, backbone: str, height: int, width: int, batch_size: int, mode: str = "MS", out: str | Path = "/tmp/mldanet-bench"
) -> Config:
    return config_from_dict(
        {
            "model": {"backbone": backbone, "variant": variant, "weights_init": "scratch"},
            "data": {"height": height, "width": width},
            "loss": {"use_hints": True, "weighting": "uncertainty"},
            "optim": {"batch_size": batch_size, "max_steps": 1000},
            "train": {"mode": mode, "out": str(out), "device": "cpu", "validate": False},
        }
    )


class _Sized:
    """The trainer only asks a dataset for its length before the first epoch."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length


def synthetic_batch(config: Config, seed: int = 0) -> Batch:
    batch_size, height, width = config.optim.batch_size, config.data.height, config.data.width
    generator = torch.Generator().manual_seed(seed)
    K = torch.eye(4).repeat(batch_size, 4, 1, 1)
    for scale in range(4):
        w, h = width / 2**scale, height / 2**scale
        K[:, scale, 0, 0], K[:, scale, 0, 2] = KITTI_FX * w, 0.5 * w
        K[:, scale, 1, 1], K[:, scale, 1, 2] = KITTI_FY * h, 0.5 * h
    stereo_T = torch.eye(4).repeat(batch_size, 1, 1)
    stereo_T[:, 0, 3] = -0.1
    images = {frame: torch.rand(batch_size, 3, height, width, generator=generator) for frame in config.train.frame_ids}
    hint = torch.rand(batch_size, 1, height, width, generator=generator) * 10
    return Batch(
        images=images,
        net_images={frame: image.clone() for frame, image in images.items()},
        K=K,
        inv_K=torch.linalg.inv(K),
        stereo_T=stereo_T if STEREO in config.train.frame_ids else None,
        depth_hint=hint,
        hint_mask=(hint > 1).float(),
        flipped=torch.zeros(batch_size, dtype=torch.bool),
        index=torch.arange(batch_size),
    )


def training_workload(config: Config) -> tuple[Trainer, Batch]:
    trainer = Trainer(config, _Sized(1000), None, progress=False)
    return trainer, synthetic_batch(config).to(trainer.device)


def step_flops(trainer: Trainer, batch: Batch) -> int:
    """FLOPs (convolutions and matrix products) of one training step: forward and backward of both nets."""
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(batch, epoch=0)
    return counter.get_total_flops()


def inference_flops(net: torch.nn.Module, image: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(image)
    return counter.get_total_flops()
