"""Colour mapping: magma's table, 0 → vmax normalisation (95th percentile by default), invalid pixels black."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps

from mldanet.visualize import colorize_depth

TABLE = (np.asarray(colormaps["magma"].colors) * 255).astype(np.uint8)  # 256 entries, matplotlib's byte rounding


def expected_colours(values: np.ndarray, vmax: float) -> np.ndarray:
    index = np.clip((values / vmax * 256).astype(int), 0, 255)
    return TABLE[index]


def test_default_vmax_is_the_95th_percentile():
    depth = np.arange(1.0, 101.0).reshape(10, 10)
    rgb = colorize_depth(depth)
    assert rgb.shape == (10, 10, 3) and rgb.dtype == np.uint8
    vmax = 95.05  # 95th percentile of 1..100 with linear interpolation
    np.testing.assert_array_equal(rgb, expected_colours(depth, vmax))
    np.testing.assert_array_equal(rgb[9, 5:], np.tile(TABLE[255], (5, 1)))  # 96..100 saturate


def test_explicit_vmax_and_invalid_pixels():
    depth = np.array([[0.0, -1.0, np.nan, np.inf], [5.0, 10.0, 20.0, 40.0]])
    rgb = colorize_depth(depth, vmax=20.0)
    np.testing.assert_array_equal(rgb[0], 0)  # no measurement: black
    np.testing.assert_array_equal(rgb[1], expected_colours(depth[1], 20.0))
    assert tuple(rgb[1, 3]) == tuple(TABLE[255])
    np.testing.assert_array_equal(colorize_depth(np.zeros((2, 3))), 0)  # nothing valid at all


def test_other_colour_maps_and_bad_input():
    depth = np.linspace(1, 10, 12).reshape(3, 4)
    viridis = (np.asarray(colormaps["viridis"].colors) * 255).astype(np.uint8)
    rgb = colorize_depth(depth, vmax=10.0, cmap="viridis")
    np.testing.assert_array_equal(rgb, viridis[np.clip((depth / 10 * 256).astype(int), 0, 255)])
    with pytest.raises(ValueError, match=r"H×W map, got shape \(1, 3, 4\)"):
        colorize_depth(depth[None])
    with pytest.raises(ValueError, match="unknown colour map 'nope'"):
        colorize_depth(depth, cmap="nope")
    with pytest.raises(ValueError, match="vmax must be positive, got -1"):
        colorize_depth(depth, vmax=-1.0)
