"""Colour-mapped pictures of depth (or disparity) maps for PNGs, TensorBoard and reports."""

from __future__ import annotations

import numpy as np

PERCENTILE = 95.0


def colorize_depth(depth: np.ndarray, vmax: float | None = None, cmap: str = "magma") -> np.ndarray:
    """H×W map → H×W×3 uint8 RGB through a matplotlib colour map (magma: black → purple → yellow).

    Values map linearly from 0 to ``vmax`` (values above saturate). ``vmax`` defaults to the 95th
    percentile of the valid values, so a few far pixels (sky) do not wash out the picture.
    Pixels that are not finite or ≤ 0 (no measurement, e.g. sparse ground truth) are drawn black.
    Pass disparity instead of depth for the field's usual picture where near is bright.
    """
    from matplotlib import colormaps

    values = np.asarray(depth, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"colorize_depth expects an H×W map, got shape {values.shape}")
    if cmap not in colormaps:
        raise ValueError(f"unknown colour map {cmap!r}")
    valid = np.isfinite(values) & (values > 0)
    if vmax is None:
        vmax = float(np.percentile(values[valid], PERCENTILE)) if valid.any() else 1.0
    if not vmax > 0:
        raise ValueError(f"vmax must be positive, got {vmax}")
    normalised = np.clip(np.where(valid, values, 0.0) / vmax, 0.0, 1.0)
    rgb = colormaps[cmap](normalised, bytes=True)[..., :3]
    rgb[~valid] = 0
    return np.ascontiguousarray(rgb)
