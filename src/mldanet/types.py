"""Named structures passed between the data pipeline, the networks, the losses and the trainer.

Frame ids follow the field's convention: ``0`` is the target frame, ``-1``/``1`` its temporal
neighbours and ``"s"`` the stereo partner. Images are float32 in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Union

import torch
from torch import Tensor

FrameId = Union[int, str]
STEREO: FrameId = "s"


@dataclass
class Sample:
    """One training/validation example as produced by a dataset (no batch dimension).

    images:      frame id -> 3×H×W original colour at the network resolution (used by the loss).
    net_images:  frame id -> 3×H×W colour-augmented copy (what the networks see).
    K, inv_K:    S×4×4 pixel intrinsics (and inverse) for each loss scale s at H/2^s × W/2^s.
    stereo_T:    4×4 transform taking points from the frame-0 camera into the stereo partner's
                 camera (translation x = ∓0.1 training units; sign flips with the image flip).
    depth_hint:  1×H×W precomputed fused-SGM depth (training units), 0 where invalid.
    hint_mask:   1×H×W float, 1 where the hint is valid.
    depth_gt:    1×h×w ground-truth depth in metres (validation only), 0 where unknown.
    """

    images: dict[FrameId, Tensor]
    net_images: dict[FrameId, Tensor]
    K: Tensor
    inv_K: Tensor
    stereo_T: Tensor | None = None
    depth_hint: Tensor | None = None
    hint_mask: Tensor | None = None
    depth_gt: Tensor | None = None
    flipped: bool = False
    index: int = 0


@dataclass
class Batch:
    """A collated :class:`Sample`: every tensor gains a leading batch dimension B."""

    images: dict[FrameId, Tensor]
    net_images: dict[FrameId, Tensor]
    K: Tensor
    inv_K: Tensor
    stereo_T: Tensor | None = None
    depth_hint: Tensor | None = None
    hint_mask: Tensor | None = None
    depth_gt: Tensor | None = None
    flipped: Tensor | None = None
    index: Tensor | None = None

    @property
    def size(self) -> int:
        return next(iter(self.images.values())).shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        def move(value):
            if isinstance(value, Tensor):
                return value.to(device, non_blocking=non_blocking)
            if isinstance(value, dict):
                return {k: v.to(device, non_blocking=non_blocking) for k, v in value.items()}
            return value

        return replace(self, **{f.name: move(getattr(self, f.name)) for f in fields(self)})


def collate_samples(samples: list[Sample]) -> Batch:
    """Stack a list of samples into a :class:`Batch` (DataLoader ``collate_fn``)."""
    if not samples:
        raise ValueError("collate_samples needs at least one sample")
    first = samples[0]

    def stack_dict(name: str) -> dict[FrameId, Tensor]:
        keys = getattr(first, name).keys()
        return {k: torch.stack([getattr(s, name)[k] for s in samples]) for k in keys}

    def stack_optional(name: str) -> Tensor | None:
        if getattr(first, name) is None:
            return None
        return torch.stack([getattr(s, name) for s in samples])

    return Batch(
        images=stack_dict("images"),
        net_images=stack_dict("net_images"),
        K=torch.stack([s.K for s in samples]),
        inv_K=torch.stack([s.inv_K for s in samples]),
        stereo_T=stack_optional("stereo_T"),
        depth_hint=stack_optional("depth_hint"),
        hint_mask=stack_optional("hint_mask"),
        depth_gt=stack_optional("depth_gt"),
        flipped=torch.tensor([s.flipped for s in samples]),
        index=torch.tensor([s.index for s in samples]),
    )


@dataclass
class LossResult:
    """Output of :func:`mldanet.losses.compute_losses`.

    total:  scalar tensor to back-propagate.
    terms:  named scalars for logging, detached: ``"reprojection/0"``, ``"hints/0"``,
            ``"smoothness/0"``, ... and ``"total/0"`` per scale, and for the learned weighting
            ``"log_var/reprojection"`` etc.
    """

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
