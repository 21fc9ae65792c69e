"""Training augmentation (docs/METHOD.md §8.3): horizontal flip and colour jitter, drawn once per sample.

The draw comes from a NumPy generator seeded by (seed, epoch, sample index), so a sample's
augmentation is the same whichever worker or rank loads it and whatever the loading order.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

FLIP_PROBABILITY = 0.5
JITTER_PROBABILITY = 0.5
BRIGHTNESS = CONTRAST = SATURATION = 0.2  # factors drawn from [1 − 0.2, 1 + 0.2]
HUE = 0.1  # hue shift drawn from [−0.1, 0.1] of the full circle


@dataclass(frozen=True)
class ColorJitter:
    """One colour-jitter draw: multiplicative factors, a hue shift, and the order they apply in
    (0 brightness, 1 contrast, 2 saturation, 3 hue)."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    order: tuple[int, ...] = (0, 1, 2, 3)


@dataclass(frozen=True)
class Augmentation:
    flip: bool = False
    jitter: ColorJitter | None = None


def augmentation_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def sample_augmentation(rng: np.random.Generator) -> Augmentation:
    """Flip with p = 0.5; jitter with p = 0.5, its factors and order drawn uniformly."""
    flip = bool(rng.random() < FLIP_PROBABILITY)
    if rng.random() >= JITTER_PROBABILITY:
        return Augmentation(flip=flip)
    jitter = ColorJitter(
        brightness=float(rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS)),
        contrast=float(rng.uniform(1 - CONTRAST, 1 + CONTRAST)),
        saturation=float(rng.uniform(1 - SATURATION, 1 + SATURATION)),
        hue=float(rng.uniform(-HUE, HUE)),
        order=tuple(int(i) for i in rng.permutation(4)),
    )
    return Augmentation(flip=flip, jitter=jitter)


def color_jitter(images: torch.Tensor, jitter: ColorJitter) -> torch.Tensor:
    """Apply one jitter draw to ...×3×H×W float images in [0, 1] (all frames of a sample at once).

    torchvision's definitions, results clamped to [0, 1]: brightness scales; contrast blends with
    each image's mean grey level, saturation with its grey image (ITU-R 601 luma); hue rotates
    in HSV. The hue step runs through OpenCV's float HSV conversion, two orders of magnitude
    faster than torchvision's tensor version at training sizes.
    """
    operations = (
        lambda x: (x * jitter.brightness).clamp_(0, 1),
        lambda x: _blend(x, _grey(x).mean(dim=(-3, -2, -1), keepdim=True), jitter.contrast),
        lambda x: _blend(x, _grey(x), jitter.saturation),
        lambda x: _shift_hue(x, jitter.hue),
    )
    for i in jitter.order:
        images = operations[i](images)
    return images


def _grey(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images.unbind(dim=-3)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: float) -> torch.Tensor:
    return (factor * images + (1 - factor) * other).clamp_(0, 1)


def _shift_hue(images: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate the HSV hue by ``shift`` turns (OpenCV's float HSV has hue in degrees)."""
    if shift == 0:
        return images
    flat = images.reshape(-1, *images.shape[-3:])
    shifted = []
    for image in flat:
        hsv = cv2.cvtColor(np.ascontiguousarray(image.permute(1, 2, 0).numpy()), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * shift, 360.0)
        shifted.append(torch.from_numpy(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)).permute(2, 0, 1))
    return torch.stack(shifted).reshape(images.shape).clamp_(0, 1)
