"""Convolutions on small feature maps as one matrix product, when training on a CPU.

At the demo's 192×64 the deepest levels are 2×6 and 4×12 maps under 512–1536-channel 3×3
kernels. oneDNN's backward pass of such a convolution runs at a tenth of its rate on large maps
(x 4×512×2×6, w 512×512×3×3, two threads: 19.8 ms forward + backward against 11.8 ms as a matrix
product; 1536 output channels: 54.9 against 34.6 ms): its weight gradient, up to 7 M entries,
comes from 4 × 12 output pixels.
Unfolding the input and multiplying once hands that product to the BLAS, which is built for
it. Large maps keep the convolution kernels; so do other devices, traced graphs (ONNX export)
and gradient-free calls (inference), where oneDNN's forward is as fast or faster.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Output pixels per image up to which a training convolution on the CPU runs as a matrix product.
# Measured on every convolution of the demo's step (batch 4, two threads, forward + backward): at
# 12 pixels (2×6) the product was faster for all 12 shapes (0.56–0.86× the time), at 48 (4×12) for
# 7 of 11 (0.59–1.16×), at 192 and more mostly slower (up to 6×).
MAX_OUTPUT_PIXELS = 24


def conv2d_as_matmul(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int], padding: tuple[int, int]
) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` (zero padding, no dilation, one group) as one GEMM.

    x: B×C×H×W, weight: O×C×kh×kw, bias: O or None → B×O×H'×W' with
    H' = (H + 2·padding − kh) // stride + 1 (likewise W'). The batch joins the GEMM's columns,
    so the weight gradient is one product too rather than B products summed.
    """
    batch = x.shape[0]
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h, out_w = _output_size(x, (kernel_h, kernel_w), stride, padding)
    columns = F.unfold(x, (kernel_h, kernel_w), padding=padding, stride=stride)  # B × C·kh·kw × H'·W'
    columns = columns.transpose(0, 1).reshape(columns.shape[1], -1)
    out = (weight.reshape(out_channels, -1) @ columns).reshape(out_channels, batch, out_h, out_w).transpose(0, 1)
    # Under autocast the product is in half precision and the bias is not: keep the product's dtype, as conv2d does.
    return out if bias is None else out + bias.view(1, -1, 1, 1).to(out.dtype)


def _output_size(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]) -> tuple[int, int]:
    return tuple((x.shape[i - 2] + 2 * padding[i] - kernel[i]) // stride[i] + 1 for i in range(2))


def _runs_as_matmul(conv: nn.Conv2d, x: Tensor, weight: Tensor) -> bool:
    if x.device.type != "cpu" or x.dim() != 4 or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    if not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return False
    if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return False
    out_h, out_w = _output_size(x, conv.kernel_size, conv.stride, conv.padding)
    return out_h * out_w <= MAX_OUTPUT_PIXELS


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same state dict) that trains on small CPU maps as a matrix product."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if _runs_as_matmul(self, input, weight):
            return conv2d_as_matmul(input, weight, bias, self.stride, self.padding)
        return super()._conv_forward(input, weight, bias)


def small_maps_as_matmul(module: nn.Module) -> nn.Module:
    """Make every plain ``nn.Conv2d`` of ``module`` (torchvision's ResNets included) a
    :class:`SmallMapConv2d`, in place; parameters, buffers and state dict keys are unchanged."""
    for child in module.modules():
        if type(child) is nn.Conv2d:
            child.__class__ = SmallMapConv2d
    return module
