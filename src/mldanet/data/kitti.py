"""KITTI's numbers (docs/METHOD.md §6.2, §8.3): the cameras' normalised intrinsics, the baseline, where hints go.

The dataset is :class:`mldanet.data.kitti_raw.KittiRawDataset`; the file layout is in
:mod:`mldanet.data.images`. No torch here (hint workers import it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mldanet.data.images import CAMERA_FOLDERS, frame_name

# monodepth2's normalised intrinsics of KITTI's colour cameras (focal lengths and principal point as
# fractions of the image size; the drives' real ones differ by ~1 %, docs/METHOD.md §6.2).
NORMALISED_FX = 0.58
NORMALISED_FY = 1.92
NORMALISED_K = np.array(
    [[NORMALISED_FX, 0, 0.5, 0], [0, NORMALISED_FY, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64
)
BASELINE = 0.54  # metres between KITTI's colour cameras


def hint_path(hints_dir: str | Path, folder: str, frame_index: int, side: str) -> Path:
    """``<hints_dir>/<date>/<drive>/image_0{2|3}/<10-digit frame>.npy``."""
    return Path(hints_dir) / folder / CAMERA_FOLDERS[side] / f"{frame_name(frame_index)}.npy"


