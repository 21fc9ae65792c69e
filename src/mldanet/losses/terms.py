"""The loss terms, registered once: name, the ``loss.*`` key of its weight, and what it computes at a scale.

:func:`mldanet.losses.compute_losses` evaluates every registered term at every scale, combines each
over scales with Eq. 12 and the terms with the :class:`~mldanet.losses.weighting.LossWeighting`
(whose weights come from the keys named here). A new term is one decorated function and, when its
weight is configurable, one field of :class:`mldanet.config.LossConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from mldanet.losses.hints import hint_loss
from mldanet.losses.reprojection import MinReprojection, masked_mean
from mldanet.losses.smoothness import edge_aware_smoothness
from mldanet.types import Batch


@dataclass(frozen=True)
class ScaleInputs:
    """What a term sees at one scale.

    disp:        B×1×h×w the scale's sigmoid disparity (h×w: the scale's own size).
    depth:       B×1×H×W its depth, upsampled to the target's size (training units).
    target:      B×3×H×W the target image.
    best:        the minimum reprojection over the sources (and identities) per pixel.
    keep:        B×H×W bool, the pixels the reprojection term averages over.
    hint_pixels: B×H×W bool where the depth hint supervises; None without hints.
    batch:       the batch (hints, images, intrinsics).
    """

    disp: Tensor
    depth: Tensor
    target: Tensor
    best: MinReprojection
    keep: Tensor
    hint_pixels: Tensor | None
    batch: Batch


@dataclass(frozen=True)
class LossTerm:
    name: str
    weight_key: str | None  # the LossConfig field of its weight; None: weight 1
    compute: Callable[[ScaleInputs], Tensor | None]  # None: the term does not apply to this batch


LOSS_TERMS: dict[str, LossTerm] = {}


def register_loss_term(name: str, weight_key: str | None = None) -> Callable:
    """Decorator: ``compute(inputs: ScaleInputs) -> scalar | None`` becomes the loss term ``name``.
    Terms are summed in the order they are registered."""

    def register(compute: Callable[[ScaleInputs], Tensor | None]) -> Callable[[ScaleInputs], Tensor | None]:
        if name in LOSS_TERMS:
            raise ValueError(f"loss term {name!r} is already registered")
        LOSS_TERMS[name] = LossTerm(name, weight_key, compute)
        return compute

    return register


@register_loss_term("reprojection")
def reprojection_term(inputs: ScaleInputs) -> Tensor:
    """Minimum photometric error over the sources, averaged over the kept pixels (docs/METHOD.md §7.2)."""
    return masked_mean(inputs.best.loss, inputs.keep)


@register_loss_term("hints", weight_key="hints_weight")
def hints_term(inputs: ScaleInputs) -> Tensor | None:
    """log(1 + |depth − hint|) where the hint beats the prediction (docs/METHOD.md §7.3)."""
    if inputs.hint_pixels is None:
        return None
    return hint_loss(inputs.depth, inputs.batch.depth_hint, inputs.hint_pixels)


@register_loss_term("smoothness", weight_key="smoothness_weight")
def smoothness_term(inputs: ScaleInputs) -> Tensor:
    """Edge-aware smoothness of the scale's disparity against the target at that scale (docs/METHOD.md §7.4)."""
    return edge_aware_smoothness(inputs.disp, resized(inputs.target, inputs.disp.shape[-2:]))


def resized(image: Tensor, size: tuple[int, int]) -> Tensor:
    """The target at a disparity's scale: area averaging (a box filter for power-of-two scales)."""
    return image if image.shape[-2:] == size else F.interpolate(image, size=size, mode="area")
