"""Batched inference of a depth network: images in, scale-0 scaled disparities out.

Used by ``mldanet evaluate``, ``mldanet predict`` and the demo, so that every path turns the
network's sigmoid output into disparity the same way (``disp_to_depth`` with the training range).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from mldanet.config import ModelConfig
from mldanet.device import resolve_device
from mldanet.evaluation.protocol import post_process_disparity
from mldanet.geometry import disp_to_depth
from mldanet.types import Batch, Sample


def _image_of(item: Any, index: int) -> Tensor:
    if isinstance(item, Sample):
        return item.images[0]
    if isinstance(item, Tensor) and item.dim() == 3 and item.shape[0] == 3:
        return item
    shape = tuple(item.shape) if isinstance(item, Tensor) else type(item).__name__
    raise ValueError(f"input {index}: expected a 3×H×W image tensor or a Sample, got {shape}")


def _batches(images: Any, batch_size: int) -> Iterator[Tensor]:
    """B×3×H×W batches from a DataLoader (of Batch or tensors) or from single images/samples."""
    if isinstance(images, DataLoader):
        for batch in images:
            yield batch.images[0] if isinstance(batch, Batch) else batch
        return
    items = images
    if hasattr(images, "__len__") and hasattr(images, "__getitem__"):
        # Map-style datasets need not stop iterating at their length; index them explicitly.
        items = (images[i] for i in range(len(images)))
    pending: list[Tensor] = []
    for index, item in enumerate(items):
        image = _image_of(item, index)
        if pending and image.shape != pending[0].shape:
            raise ValueError(
                f"input {index} is {tuple(image.shape)} but the batch it joins holds {tuple(pending[0].shape)}"
            )
        pending.append(image)
        if len(pending) == batch_size:
            yield torch.stack(pending)
            pending = []
    if pending:
        yield torch.stack(pending)


def _count(images: Any) -> int | None:
    if isinstance(images, DataLoader):
        dataset = images.dataset
        return len(dataset) if hasattr(dataset, "__len__") else None
    return len(images) if hasattr(images, "__len__") else None


@torch.no_grad()
def predict_disparities(
    net: nn.Module,
    images: Iterable[Tensor] | Iterable[Sample] | DataLoader,
    batch_size: int = 8,
    device: str = "cpu",
    post_process: bool = False,
    progress: bool = True,
    min_depth: float = ModelConfig.min_depth,
    max_depth: float = ModelConfig.max_depth,
) -> np.ndarray:
    """Scaled scale-0 disparities (N×h×w float32) for N images in [0, 1].

    images: 3×H×W tensors or :class:`Sample` (``images[0]``) one by one, a map-style dataset of
            them, or a DataLoader yielding :class:`Batch` or B×3×H×W tensors; all of one size.
    The network is moved to ``device`` and run in eval mode (its train/eval mode is restored).
    ``post_process`` also runs the mirrored images and blends both (monodepth's post-processing).
    Scaled disparity = disp_to_depth(sigmoid output, min_depth, max_depth)[0], in training units.
    """
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1")
    device = resolve_device(device)
    was_training = net.training
    net.to(device).eval()
    outputs: list[np.ndarray] = []
    try:
        with tqdm(total=_count(images), desc="predict", unit="img", disable=not progress, leave=False) as bar:
            for batch in _batches(images, batch_size):
                batch = batch.to(device, dtype=torch.float32)
                if post_process:
                    batch = torch.cat([batch, torch.flip(batch, dims=[3])])
                scaled, _ = disp_to_depth(net(batch)[0].float(), min_depth, max_depth)
                disp = scaled[:, 0].cpu().numpy()
                if post_process:
                    half = disp.shape[0] // 2
                    disp = post_process_disparity(disp[:half], disp[half:, :, ::-1])
                outputs.append(disp)
                bar.update(disp.shape[0])
    finally:
        net.train(was_training)
    if not outputs:
        raise ValueError("no images to predict")
    return np.concatenate(outputs).astype(np.float32, copy=False)
