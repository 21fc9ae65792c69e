"""A small KITTI raw tree built from the real frame in ``../shared/data/kitti_sample`` (for tests).

Frame 1 of ``image_02`` is the real JPEG, byte for byte, with its Velodyne scan and calibration.
Frames 0 and 2 are the real image rolled up/down by 4 rows (so neighbours differ from the target).
``image_03`` holds each left frame shifted left by ``shift`` pixels: a stereo pair whose true
disparity is ``shift`` (at 1241 px width) everywhere but the wrapped right edge.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

DATE = "2011_10_03"
DRIVE = f"{DATE}_drive_0000_sync"
FOLDER = f"{DATE}/{DRIVE}"
SHIFT = 32


def make_kitti_drive(kitti_sample: Path, root: Path, frames: tuple[int, ...] = (0, 1, 2), shift: int = SHIFT) -> Path:
    """Write the tree under ``root`` and return ``root``; lines are ``f"{FOLDER} <frame> <l|r>"``."""
    source = kitti_sample / DATE
    (root / DATE).mkdir(parents=True, exist_ok=True)
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        shutil.copy(source / name, root / DATE / name)
    real_jpg = source / DRIVE / "image_02" / "data" / "0000000001.jpg"
    real = cv2.imread(str(real_jpg))
    for camera in ("image_02", "image_03"):
        (root / FOLDER / camera / "data").mkdir(parents=True, exist_ok=True)
    for frame in frames:
        name = f"{frame:010d}.jpg"
        left = np.roll(real, 4 * (frame - 1), axis=0)
        if frame == 1:
            shutil.copy(real_jpg, root / FOLDER / "image_02" / "data" / name)
        else:
            cv2.imwrite(str(root / FOLDER / "image_02" / "data" / name), left, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(
            str(root / FOLDER / "image_03" / "data" / name),
            np.roll(left, -shift, axis=1),
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )
    velodyne = root / FOLDER / "velodyne_points" / "data"
    velodyne.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / DRIVE / "velodyne_points" / "data" / "0000000001.bin", velodyne / "0000000001.bin")
    return root


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path
