"""Shared synthetic data: one tiny dataset written once per test session."""

from __future__ import annotations

import numpy as np
import pytest

from mldanet.synth import write_synthetic_drives
from mldanet.synth.scene import Boxes, Scene

TINY = {"drives": 2, "frames": 4, "seed": 3, "width": 310, "height": 94}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """2 drives × 4 frames at 310×94 (PNG, so pixels are exactly the renderer's)."""
    root = tmp_path_factory.mktemp("synth_tiny")
    return write_synthetic_drives(root, workers=1, progress=False, img_ext=".png", **TINY)


def box_scene(bounds, road_half_width: float = 50.0) -> Scene:
    """A scene of the given N×6 boxes (x0, x1, y0, y1, z0, z1) on plain road."""
    bounds = np.asarray(bounds, np.float64).reshape(-1, 6)
    n = len(bounds)
    return Scene(
        boxes=Boxes(
            bounds=bounds,
            tile=np.full(n, 3, np.int64),
            colour=np.full((n, 3), 0.5, np.float32),
            windows=np.zeros((n, 5), np.float32),
        ),
        road_half_width=road_half_width,
        parking_line=0.0,
        centre_line=False,
        road_colour=np.full(3, 0.3, np.float32),
        sidewalk_colour=np.full(3, 0.5, np.float32),
        x_start=-100.0,
        side_street=np.zeros((2, 10), bool),
        sun=np.array([0.0, 0.0, 1.0]),
        texture_seed=0,
    )
