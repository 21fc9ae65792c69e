"""Box filters shared by the SSIM of the loss and the guided filter of structure attention.

PyTorch's CPU ``avg_pool2d`` with stride 1 is several times slower than summing shifted views
of the input (3×3 on 132×96×320 planes, one thread: forward 47 → 10 ms, backward 61 → 30 ms;
5×5 on the guided filter's planes: similar), so on CPUs the windows are summed separably from
views; other devices keep the pooling kernels, and so do traced graphs (ONNX export), whose
runtimes have fast pooling of their own.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor


def _sum_of_views(padded: Tensor, size: int) -> Tensor:
    height, width = padded.shape[-2] - size + 1, padded.shape[-1] - size + 1
    rows = sum(padded[..., i : i + height, :] for i in range(size))
    return sum(rows[..., j : j + width] for j in range(size))


class _BoxSum(torch.autograd.Function):
    """Autograd's backward of 2·size slices would zero-fill a full-size tensor per slice; the
    adjoint of a valid box sum is the box sum of the zero-padded gradient, computed the same way."""

    @staticmethod
    def forward(ctx, padded: Tensor, size: int) -> Tensor:
        ctx.size = size
        return _sum_of_views(padded, size)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        margin = ctx.size - 1
        return _sum_of_views(F.pad(grad, (margin, margin, margin, margin)), ctx.size), None


def box_sum(padded: Tensor, size: int) -> Tensor:
    """Sum over every valid size×size window: …×(H+size−1)×(W+size−1) → …×H×W (separable views)."""
    if not (padded.requires_grad and torch.is_grad_enabled()):
        return _sum_of_views(padded, size)
    return _BoxSum.apply(padded, size)


def box_mean_valid(padded: Tensor, size: int) -> Tensor:
    """Mean over every valid size×size window of an already padded N×C×(H+size−1)×(W+size−1) tensor."""
    if padded.device.type != "cpu" or torch.jit.is_tracing():
        return F.avg_pool2d(padded, kernel_size=size, stride=1)
    return box_sum(padded, size) / (size * size)


def box_mean_clipped(x: Tensor, radius: int) -> Tensor:
    """Mean over the (2r+1)² window around each pixel, clipped at the borders: N×C×H×W → same."""
    size = 2 * radius + 1
    if x.device.type != "cpu" or torch.jit.is_tracing():
        return F.avg_pool2d(x, size, stride=1, padding=radius, count_include_pad=False)
    height, width = x.shape[-2:]
    sums = box_sum(F.pad(x, (radius, radius, radius, radius)), size)
    return sums * _inverse_window_counts(height, width, radius, x.dtype)


@functools.lru_cache(maxsize=64)
def _inverse_window_counts(height: int, width: int, radius: int, dtype: torch.dtype) -> Tensor:
    """1 / (pixels inside each clipped window): H×W, the outer product of the per-axis counts."""

    def counts(length: int) -> Tensor:
        index = torch.arange(length)
        return (torch.clamp(index + radius, max=length - 1) - torch.clamp(index - radius, min=0) + 1).to(dtype)

    return 1.0 / torch.outer(counts(height), counts(width))
