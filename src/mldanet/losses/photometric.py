"""Photometric error: pe(a, b) = α·(1 − SSIM(a, b))/2 + (1 − α)·|a − b|₁ (monodepth2's definition).

SSIM uses 3×3 windows with reflection padding and C1 = 0.01², C2 = 0.03². All local means come
from a single reflection pad and a single 3×3 box mean (:mod:`mldanet.filters`) over one stacked
tensor rather than five of each: the pools are a large share of a training step. When several
predictions (warped sources) share one target, the target's means (y, y²) are pooled once instead of once per
source: for S = 3 sources that is 11 pooled maps per colour channel, not 15.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mldanet.filters import box_mean_valid

C1 = 0.01**2
C2 = 0.03**2


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Per-pixel SSIM dissimilarity clamp((1 − SSIM)/2, 0, 1) over 3×3 reflection-padded windows.

    x: B×C×H×W, y: B×C×H×W → B×C×H×W. Several x sharing one y: x …×B×C×H×W with any leading
    dims and y B×C×H×W → …×B×C×H×W (y's statistics are computed once).
    """
    if x.dim() < 4 or y.dim() != 4 or x.shape[-4:] != y.shape:
        raise ValueError(
            "ssim needs x of shape …×B×C×H×W and y of shape B×C×H×W, "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    height, width = y.shape[-2:]
    # Every statistic map is an independent plane for the box mean, so all of them (x, x², xy for
    # every prediction, y and y² once) go through one pad and one pool as a stack of planes.
    planes = [x, x * x, x * y, y, y * y]
    stacked = torch.cat([p.reshape(-1, height, width) for p in planes]).unsqueeze(1)
    means = box_mean_valid(F.pad(stacked, (1, 1, 1, 1), mode="reflect"), 3)
    sizes = [p.numel() // (height * width) for p in planes]
    mu_x, mean_xx, mean_xy, mu_y, mean_yy = (m.reshape(p.shape) for m, p in zip(means.split(sizes), planes))

    mu_xy = mu_x * mu_y
    mu_xx = mu_x * mu_x
    mu_yy = mu_y * mu_y
    numerator = (2 * mu_xy + C1) * (2 * (mean_xy - mu_xy) + C2)
    denominator = (mu_xx + mu_yy + C1) * ((mean_xx - mu_xx) + (mean_yy - mu_yy) + C2)
    return torch.clamp((1 - numerator / denominator) / 2, 0, 1)


def photometric_error(pred: Tensor, target: Tensor, alpha: float = 0.85) -> Tensor:
    """Channel-mean photometric error α·ssim + (1 − α)·|pred − target|.

    pred: B×C×H×W, target: B×C×H×W → B×1×H×W. Several predictions against one target in a
    single call: pred S×B×C×H×W (e.g. all warped sources) and target B×C×H×W → S×B×1×H×W.
    """
    structural = ssim(pred, target).mean(dim=-3, keepdim=True)
    l1 = (pred - target).abs().mean(dim=-3, keepdim=True)
    return alpha * structural + (1 - alpha) * l1
