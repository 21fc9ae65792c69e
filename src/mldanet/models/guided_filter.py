"""Weighted fast guided filter (docs/METHOD.md §4.2): the edge-preserving step inside structure attention.

Per channel and per low-resolution window ω_k (the (2r+1)² window, clipped at the borders) a
linear model y ≈ a_k·x + b_k of the target y in the guide x is fitted by weighted least squares,

    min_{a,b}  (1/|ω_k|) Σ_{i∈ω_k} w_i (a·x_i + b − y_i)²  +  λ a²,

i.e. He et al.'s cost (the λ penalty counted once per window, the data term as a window mean)
with a per-pixel weight w. Its solution in window means box(·) is

    W̄ = box(w),  μx = box(w·x)/W̄,  σxx = box(w·x²)/W̄ − μx²,  σxy = box(w·x·y)/W̄ − μx·μy,
    a = σxy / (σxx + λ/W̄),  b = μy − a·μx.

The coefficients are averaged over the windows covering each pixel, A, B = box(a), box(b),
upsampled bilinearly to the high-resolution guide X, and the output is A·X + B. With w ≡ 1 this
is exactly He et al.'s guided filter (a = cov/(var + λ)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mldanet.filters import box_mean_clipped

# box(w) is a mean of squared sigmoids: strictly positive in exact arithmetic, but it may
# underflow; below this floor the fit degenerates gracefully to a ≈ 0, b ≈ μy.
MIN_WEIGHT_MEAN = 1e-6


def fast_guided_filter(
    guide_lr: Tensor,
    target_lr: Tensor,
    guide_hr: Tensor,
    weight_lr: Tensor,
    radius: int = 2,
    eps: float = 1e-2,
) -> Tensor:
    """Fit the weighted guided filter at low resolution and apply it to the high-resolution guide.

    guide_lr:  B×C×h×w guide x (in MLDA-Net, the downsampled high-resolution features f'_l).
    target_lr: B×C×h×w target y (the low-resolution features f_l).
    guide_hr:  B×C×H×W the image the fitted model is applied to (f_h).
    weight_lr: B×1×h×w non-negative per-pixel weights, shared by all channels.
    Returns B×C×H×W in guide_hr's dtype. Computed in at least float32: the variances are
    differences of means, which half precision cannot resolve.
    """
    if radius < 1:
        raise ValueError(f"guided filter radius={radius} must be at least 1")
    if guide_lr.shape != target_lr.shape:
        raise ValueError(f"guide {tuple(guide_lr.shape)} and target {tuple(target_lr.shape)} must have the same shape")
    batch, channels, height, width = guide_lr.shape
    if weight_lr.shape != (batch, 1, height, width):
        raise ValueError(f"weight {tuple(weight_lr.shape)} must be {batch}×1×{height}×{width}")
    if guide_hr.shape[:2] != (batch, channels):
        raise ValueError(f"high-resolution guide {tuple(guide_hr.shape)} must have batch×channels {batch}×{channels}")

    dtype = torch.promote_types(guide_hr.dtype, torch.float32)
    x, y, w = guide_lr.to(dtype), target_lr.to(dtype), weight_lr.to(dtype)
    wx, wy = w * x, w * y
    # One pooling call for all five window means.
    means = box_mean_clipped(torch.cat((w, wx, wy, wx * x, wx * y), dim=1), radius)
    weight_mean = means[:, :1].clamp_min(MIN_WEIGHT_MEAN)
    mean_wx, mean_wy, mean_wxx, mean_wxy = means[:, 1:].split(channels, dim=1)
    mu_x = mean_wx / weight_mean
    mu_y = mean_wy / weight_mean
    var_x = (mean_wxx / weight_mean - mu_x * mu_x).clamp_min(0.0)
    cov_xy = mean_wxy / weight_mean - mu_x * mu_y
    a = cov_xy / (var_x + eps / weight_mean)
    b = mu_y - a * mu_x
    coefficients = box_mean_clipped(torch.cat((a, b), dim=1), radius)
    coefficients = F.interpolate(coefficients, size=guide_hr.shape[-2:], mode="bilinear", align_corners=False)
    big_a, big_b = coefficients.split(channels, dim=1)
    return torch.addcmul(big_b, big_a, guide_hr.to(dtype)).to(guide_hr.dtype)
