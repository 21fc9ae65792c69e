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
def real_kitti_sample(shared_data: Path) -> Path:
    """The one real KITTI frame (image, Velodyne scan, calibration): for checks against real data."""
    return shared_data / "kitti_sample"


@pytest.fixture(scope="session")
def kitti_sample(tmp_path_factory) -> Path:
    """A one-frame KITTI raw folder: the real frame when ``../shared/data`` is there, else one that
    ``mldanet synth`` renders at KITTI's size under the same date, drive and frame names, so tests
    that need only the layout run in any clone."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA / "kitti_sample"
    return synthetic_kitti_sample(tmp_path_factory.mktemp("synthetic_kitti_sample"))


def synthetic_kitti_sample(root: Path) -> Path:
    """``root`` laid out as ``shared/data/kitti_sample`` (frame 1 of drive 0000), rendered by synth."""
    import shutil

    from mldanet.synth import write_synthetic_drives
    from mldanet.synth.layouts import DATE, drive_folder

    rendered = root / "rendered"
    # at the real frame's size (1241×376), which tests of size checks spell out
    write_synthetic_drives(rendered, drives=2, frames=3, width=1241, height=376, workers=1, progress=False)
    sample = root / "kitti_sample"
    date_dir = sample / KITTI_DATE
    date_dir.mkdir(parents=True)
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
        shutil.copy(rendered / DATE / name, date_dir / name)
    source, drive = rendered / DATE / drive_folder(0), date_dir / KITTI_DRIVE
    for sub, ext in (("image_02", ".jpg"), ("velodyne_points", ".bin")):
        (drive / sub / "data").mkdir(parents=True)
        shutil.copy(source / sub / "data" / f"0000000001{ext}", drive / sub / "data" / f"0000000001{ext}")
    return sample


@pytest.fixture(scope="session")
def splits_dir(shared_data: Path) -> Path:
    return shared_data / "splits"


KITTI_DATE = "2011_10_03"
KITTI_DRIVE = "2011_10_03_drive_0000_sync"


def build_kitti_fixture(root: Path, source: Path, frames: int = 6, hints: bool = True) -> dict[str, Path]:
    """A KITTI-raw-layout folder built from the one frame of ``kitti_sample`` (real or synthetic).

    Frame i is that image shifted left by 2·i pixels (so neighbours differ like a moving
    camera would), image_03 is the same frame shifted by 8 pixels (a stereo partner), every frame
    carries the sample's Velodyne scan, and its calibration files sit beside the drive. With
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
    # the first and last frames, which no training line targets (training refuses a list sharing test frames)
    (splits / "fixture" / "test_files.txt").write_text(f"{KITTI_DATE}/{KITTI_DRIVE} 0 l\n{KITTI_DATE}/{KITTI_DRIVE} {frames - 1} l\n")
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
