"""KITTI raw calibration files: ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` of a date folder.

Every function takes the calibration directory ``<root>/<date>`` and raises
:class:`FileNotFoundError` / :class:`ValueError` naming the file (and key or line) at fault.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CAM_TO_CAM = "calib_cam_to_cam.txt"
VELO_TO_CAM = "calib_velo_to_cam.txt"
CAMERAS = (0, 1, 2, 3)


def read_calib_file(path: str | Path) -> dict[str, np.ndarray]:
    """Parse ``key: v1 v2 ...`` lines into float64 vectors.

    Values that are not numbers (``calib_time: 09-Jan-2012 14:00:15``) are left out: no caller
    needs them, and KITTI writes them in a free date format. A line mixing numbers and text is
    a damaged numeric entry, and an error naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"calibration file not found: {path}")
    values: dict[str, np.ndarray] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not a text file ({error.reason} at byte {error.start})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{lineno}: expected 'key: values', got {line.strip()!r}")
        numbers = [_number(token) for token in rest.split()]
        if numbers and all(n is None for n in numbers):
            continue
        if any(n is None for n in numbers):
            raise ValueError(f"{path}:{lineno}: '{key.strip()}' mixes numbers and text: {rest.strip()!r}")
        values[key.strip()] = np.array(numbers, dtype=np.float64)
    return values


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def calibration_entry(values: dict[str, np.ndarray], key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    """``values[key]`` reshaped to ``shape``; a missing key or a wrong count names the file."""
    if key not in values:
        raise ValueError(f"{path}: no '{key}' entry (found: {', '.join(sorted(values)) or 'none'})")
    entry = values[key]
    if entry.size != int(np.prod(shape)):
        raise ValueError(f"{path}: '{key}' has {entry.size} values, expected {int(np.prod(shape))}")
    return entry.reshape(shape)


def load_cam_to_cam(calib_dir: str | Path) -> dict[str, np.ndarray]:
    """All entries of ``<calib_dir>/calib_cam_to_cam.txt`` (S_rect_0i, R_rect_0i, P_rect_0i, ...)."""
    return read_calib_file(Path(calib_dir) / CAM_TO_CAM)


def _check_camera(cam: int) -> None:
    if cam not in CAMERAS:
        raise ValueError(f"camera {cam} is not a KITTI camera (0, 1, 2 or 3)")


def velo_to_cam(calib_dir: str | Path) -> np.ndarray:
    """4×4 rigid transform from Velodyne coordinates into the (unrectified) camera-0 frame."""
    path = Path(calib_dir) / VELO_TO_CAM
    values = read_calib_file(path)
    transform = np.eye(4)
    transform[:3, :3] = calibration_entry(values, "R", (3, 3), path)
    transform[:3, 3] = calibration_entry(values, "T", (3,), path)
    return transform


def velo_to_image(calib_dir: str | Path, cam: int = 2) -> np.ndarray:
    """3×4 projection ``P_rect_0{cam} · R_rect_00 · velo_to_cam`` from Velodyne points to pixels.

    KITTI rectifies every camera into camera 0's rectified frame, so ``R_rect_00`` is the
    rotation for all of them; ``P_rect_0{cam}`` carries the camera's offset along the rig.
    """
    _check_camera(cam)
    path = Path(calib_dir) / CAM_TO_CAM
    values = read_calib_file(path)
    rect = np.eye(4)
    rect[:3, :3] = calibration_entry(values, "R_rect_00", (3, 3), path)
    projection = calibration_entry(values, f"P_rect_0{cam}", (3, 4), path)
    return projection @ rect @ velo_to_cam(calib_dir)


def image_size_from_calib(calib_dir: str | Path, cam: int = 2) -> tuple[int, int]:
    """(height, width) of the rectified images of camera ``cam`` (``S_rect_0{cam}`` holds width, height)."""
    _check_camera(cam)
    path = Path(calib_dir) / CAM_TO_CAM
    width, height = calibration_entry(read_calib_file(path), f"S_rect_0{cam}", (2,), path)
    return int(round(height)), int(round(width))
