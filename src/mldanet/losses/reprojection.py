"""Minimum reprojection with automasking (monodepth2), masked as depth-hints does.

Per pixel the loss keeps the smallest photometric error over the warped sources, so a pixel
occluded in one source is explained by another. Automasking compares it with the *identity*
errors (the unwarped sources against the target): where an unwarped source already matches
better — a static camera, an object moving with the camera, textureless sky — the pixel is
dropped. A 1e-5 Gaussian noise on the identity errors breaks exact ties (e.g. a frame repeated
while the car stands still) so such pixels are dropped rather than kept.

The identity errors do not depend on the prediction: compute them (and their noise) once per
batch and reuse them for every scale.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

TIE_NOISE = 1e-5


class MinReprojection(NamedTuple):
    """Result of :func:`min_reprojection` (all B×1×H×W).

    loss:      the minimum error over the warped sources.
    identity:  the minimum (noisy) identity error, None without automasking.
    automask:  bool, True where a warped source beats every unwarped one (all True without automasking).
    index:     int64 winner among [warped sources 0..S−1, identity errors S..2S−1].
    """

    loss: Tensor
    identity: Tensor | None
    automask: Tensor
    index: Tensor


def add_tie_noise(identity: Tensor, seeds: Tensor | None = None) -> Tensor:
    """identity + 1e-5·N(0, 1), each sample's noise from its own generator when seeds are given.

    identity: B×S×H×W, seeds: B integers (or None: the global RNG) → B×S×H×W. A sample's noise
    depends only on its seed, not on which samples share its batch.
    """
    if seeds is None:
        return identity + TIE_NOISE * torch.randn_like(identity)
    seeds = seeds.reshape(-1)
    if seeds.numel() != identity.shape[0]:
        raise ValueError(
            f"add_tie_noise needs one seed per sample: {seeds.numel()} seeds for batch {identity.shape[0]}"
        )
    noise = torch.empty_like(identity)
    generator = torch.Generator(device=identity.device)
    for sample, seed in enumerate(seeds.tolist()):
        generator.manual_seed(int(seed))
        noise[sample] = torch.randn(
            identity.shape[1:], generator=generator, device=identity.device, dtype=identity.dtype
        )
    return identity + TIE_NOISE * noise


def min_reprojection(reprojection: Tensor, identity: Tensor | None = None) -> MinReprojection:
    """Per-pixel minimum over sources, with automasking when identity errors are given.

    reprojection: B×S×H×W errors of the warped sources; identity: B×S×H×W errors of the unwarped
    sources, tie noise already added (:func:`add_tie_noise`), or None to disable automasking.
    """
    loss, index = reprojection.min(dim=1, keepdim=True)
    if identity is None:
        return MinReprojection(loss, None, torch.ones_like(loss, dtype=torch.bool), index)
    if identity.shape != reprojection.shape:
        raise ValueError(
            f"identity errors {tuple(identity.shape)} must match the reprojection errors {tuple(reprojection.shape)}"
        )
    identity_min, identity_index = identity.min(dim=1, keepdim=True)
    automask = loss < identity_min
    index = torch.where(automask, index, identity_index + reprojection.shape[1])
    return MinReprojection(loss, identity_min, automask, index)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Σ mask·values / (Σ mask + 1e-7): the mean over the masked pixels, 0 when none is masked.

    values: any shape, mask: broadcastable bool or float → scalar.
    """
    mask = mask.to(values.dtype)
    return (values * mask).sum() / (mask.sum() + 1e-7)
