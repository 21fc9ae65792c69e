"""Shared fixtures. Real test data lives in ``../shared/data`` beside the checkout (never copied in)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MLDANET_SHARED_DATA", REPO.parent / "shared" / "data"))

# Under pytest-xdist every worker gets its share of the cores: OpenMP threads that outnumber the
# cores spin against each other and make a step many times slower.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, (os.cpu_count() or 1) // _WORKERS))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip (with the reason) only when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (set MLDANET_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def kitti_sample(shared_data: Path) -> Path:
    return shared_data / "kitti_sample"


@pytest.fixture(scope="session")
def splits_dir(shared_data: Path) -> Path:
    return shared_data / "splits"


KITTI_DATE = "2011_10_03"
KITTI_DRIVE = "2011_10_03_drive_0000_sync"


def build_kitti_fixture(root: Path, source: Path, frames: int = 6, hints: bool = True) -> dict[str, Path]:
    """A KITTI-raw-layout folder built from the one real frame in ``shared/data/kitti_sample``.

    Frame i is the real image shifted left by 2·i pixels (so neighbours differ like a moving
    camera would), image_03 is the same frame shifted by 8 pixels (a stereo partner), every frame
    carries the real Velodyne scan, and the real calibration files sit beside the drive. With
    ``hints`` a constant-depth hint (training units) is written for both sides.
    Returns paths: data, splits (a split folder "fixture" with train/val/test files), hints.
    """
    import shutil

    import cv2
    import numpy as np

    src_drive = source / KITTI_DATE / KITTI_DRIVE
    image = cv2.imread(str(src_drive / "image_02" / "data" / "0000000001.jpg"))
    velo = src_drive / "velodyne_points" / "data" / "0000000001.bin"
    data = root / "kitti"
    drive = data / KITTI_DATE / KITTI_DRIVE
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
        (data / KITTI_DATE).mkdir(parents=True, exist_ok=True)
        shutil.copy(source / KITTI_DATE / name, data / KITTI_DATE / name)
    for folder in ("image_02/data", "image_03/data", "velodyne_points/data"):
        (drive / folder).mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        stem = f"{i:010d}"
        left = np.roll(image, -2 * i, axis=1)
        cv2.imwrite(str(drive / "image_02" / "data" / f"{stem}.jpg"), left, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(str(drive / "image_03" / "data" / f"{stem}.jpg"), np.roll(left, -8, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 95])
        shutil.copy(velo, drive / "velodyne_points" / "data" / f"{stem}.bin")
    lines = [f"{KITTI_DATE}/{KITTI_DRIVE} {i} {side}" for i in range(1, frames - 1) for side in ("l", "r")]
    splits = root / "splits"
    (splits / "fixture").mkdir(parents=True, exist_ok=True)
    (splits / "fixture" / "train_files.txt").write_text("\n".join(lines) + "\n")
    (splits / "fixture" / "val_files.txt").write_text("\n".join(lines[:2]) + "\n")
    (splits / "fixture" / "test_files.txt").write_text("\n".join(lines[::2]) + "\n")
    hints_dir = root / "hints"
    if hints:
        for i in range(frames):
            for cam in ("image_02", "image_03"):
                out = hints_dir / KITTI_DATE / KITTI_DRIVE / cam
                out.mkdir(parents=True, exist_ok=True)
                hint = np.full((96, 320), 1.5, np.float32)
                hint[:10] = 0  # an invalid band, as SGM leaves at the top of the image
                np.save(out / f"{i:010d}.npy", hint)
    return {"data": data, "splits": splits, "hints": hints_dir}


@pytest.fixture(scope="session")
def kitti_fixture(tmp_path_factory, kitti_sample: Path) -> dict[str, Path]:
    return build_kitti_fixture(tmp_path_factory.mktemp("kitti_fixture"), kitti_sample)
