"""Writes synthetic drives in the exact KITTI raw layout, with calibration, Velodyne scans and splits.

::

    OUT/<DATE>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    OUT/<DATE>/<DATE>_drive_<nnnn>_sync/image_02/data/<10 digits>.jpg|png   (+ timestamps.txt)
                                        image_03/data/...
                                        velodyne_points/data/<10 digits>.bin  float32 × 4
                                        proj_depth/groundtruth/image_0{2,3}/<10 digits>.png  dense depth
    OUT/splits/synth/{train,val,test}_files.txt
    OUT/synth_info.json          seed, sizes, intrinsics, baseline, per-frame poses

Calibration. Cameras 0/1 (KITTI's grey pair, not rendered) coincide with cameras 2/3; every
rectifying rotation is the identity; camera 3 is BASELINE to the right of camera 2, so
``P_rect_03`` carries ``−fx · BASELINE``. The Velodyne sits at camera 2's centre, axes x forward,
y left, z up, so ``calib_velo_to_cam`` is the axis permutation (x_cam = −y, y_cam = −z, z_cam = x)
with T = 0 and a point's Velodyne x is its camera-2 depth.

Pixel convention. The renderer puts pixel centres at integer coordinates with the principal point
(cx, cy) = (0.5·W, 0.5·H) that the networks assume. The calibration files are written with
KITTI's 1-based pixel convention, principal point (cx + 1, cy + 1): monodepth2's
``generate_depth_map`` (and :mod:`mldanet.data.ground_truth`) subtract one after projecting, and
so put each Velodyne point on the pixel the renderer drew it on.

Dense depth. Beside the scans, every view's rendered depth is saved where KITTI's annotated depth
maps lie (``proj_depth/groundtruth``, uint16 PNG of metres × 256, 0 for the sky), so that
``--benchmark-dir`` of the drives' root scores against it and depth boundaries can be measured.
"""

from __future__ import annotations

import ctypes
import datetime
import json
import os
import re
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mldanet.synth import textures
from mldanet.synth.render import (
    VELODYNE_AZIMUTH_STEP,
    VELODYNE_ELEVATIONS,
    VELODYNE_MAX_RANGE,
    render_view,
    velodyne_scan,
)
from mldanet.synth.rig import BASELINE, CAMERA_HEIGHT, K_NORM, Intrinsics, right_camera_pose
from mldanet.synth.scene import Drive, make_drive

DATE = "2000_01_01"  # not a KITTI recording date, so synthetic drives never pass for real ones
SPLIT_NAME = "synth"
IMAGE_EXTENSIONS = (".jpg", ".png")
LAYOUTS = ("kitti", "folder")
JPEG_QUALITY = 95
VAL_EVERY = 20  # every 20th frame (from the 10th) of the training drives is held out for validation
FORMAT = "mldanet-synth/1"


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`write_synthetic_drives` wrote."""

    root: Path
    date: str
    drives: tuple[str, ...]  # drive folders, e.g. "2000_01_01_drive_0001_sync"
    train_drives: tuple[str, ...]
    test_drive: str
    frames: int
    width: int
    height: int
    img_ext: str
    split_dir: Path
    split_files: dict[str, Path] = field(default_factory=dict)  # "train" | "val" | "test" -> file
    info_path: Path = Path()
    seconds: float = 0.0


def drive_folder(index: int) -> str:
    """Folder name of drive ``index`` (0-based): ``<DATE>_drive_<index + 1:04d>_sync``."""
    return f"{DATE}_drive_{index + 1:04d}_sync"


def sequence_folder(index: int) -> str:
    """Folder of drive ``index`` (0-based) in the folder layout: ``drive_<index + 1:04d>``."""
    return f"drive_{index + 1:04d}"


def camera_file(width: int, height: int) -> str:
    """The folder layout's ``camera.yaml``: the rig's K in pixels, its image size and baseline."""
    k = Intrinsics.for_size(width, height).matrix
    rows = ", ".join("[" + ", ".join(f"{v:.6g}" for v in row) + "]" for row in k)
    return f"K: [{rows}]\nimage_size: [{width}, {height}]\nbaseline: {BASELINE}\n"


def frame_name(frame: int) -> str:
    return f"{frame:010d}"


def _matrix_line(key: str, values: np.ndarray) -> str:
    return f"{key}: " + " ".join(f"{v:.6e}" for v in np.asarray(values, np.float64).ravel())


def calib_cam_to_cam(intrinsics: Intrinsics, width: int, height: int) -> str:
    """``calib_cam_to_cam.txt`` in KITTI's format (see the module docstring for the conventions)."""
    k = intrinsics.matrix
    k[0, 2] += 1.0  # KITTI's 1-based pixel convention
    k[1, 2] += 1.0
    lines = ["calib_time: 01-Jan-2000 00:00:00", "corner_dist: 0.000000e+00"]
    for cam in range(4):
        x = BASELINE if cam % 2 else 0.0  # cameras 1 and 3 on the right
        projection = np.hstack([k, [[-k[0, 0] * x], [0.0], [0.0]]])
        lines += [
            _matrix_line(f"S_0{cam}", [width, height]),
            _matrix_line(f"K_0{cam}", k),
            _matrix_line(f"D_0{cam}", np.zeros(5)),
            _matrix_line(f"R_0{cam}", np.eye(3)),
            _matrix_line(f"T_0{cam}", [-x, 0.0, 0.0]),
            _matrix_line(f"S_rect_0{cam}", [width, height]),
            _matrix_line(f"R_rect_0{cam}", np.eye(3)),
            _matrix_line(f"P_rect_0{cam}", projection),
        ]
    return "\n".join(lines) + "\n"


VELO_TO_CAM_ROTATION = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def calib_velo_to_cam() -> str:
    return "\n".join([
        "calib_time: 01-Jan-2000 00:00:00",
        _matrix_line("R", VELO_TO_CAM_ROTATION),
        _matrix_line("T", np.zeros(3)),
        _matrix_line("delta_f", np.zeros(2)),
        _matrix_line("delta_c", np.zeros(2)),
    ]) + "\n"


def calib_imu_to_velo() -> str:
    """The synthetic rig has no IMU (no oxts data): identity, written only so the layout is complete."""
    lines = ["calib_time: 01-Jan-2000 00:00:00", _matrix_line("R", np.eye(3)), _matrix_line("T", np.zeros(3))]
    return "\n".join(lines) + "\n"


def _timestamps(drive: int, frames: int) -> str:
    start = datetime.datetime(2000, 1, 1, 12, 0, 0) + datetime.timedelta(hours=drive)
    stamps = [start + datetime.timedelta(milliseconds=100 * i) for i in range(frames)]
    return "".join(f"{s:%Y-%m-%d %H:%M:%S}.{s.microsecond:06d}000\n" for s in stamps)


def split_lines(drives: int, frames: int) -> dict[str, list[str]]:
    """KITTI split lines ``<date>/<drive> <frame> <l|r>`` for frames with both temporal neighbours.

    The last drive is the test drive (left images). Of the training drives, frames 10, 30, 50, …
    go to validation (left images) and the rest to training, both sides as in eigen_zhou; drives
    too short for that lend their middle frame to validation as well.
    """
    usable = range(1, frames - 1)
    val_frames = [i for i in usable if i % VAL_EVERY == VAL_EVERY // 2]
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for d in range(drives - 1):
        folder = f"{DATE}/{drive_folder(d)}"
        lines["val"] += [f"{folder} {i} l" for i in val_frames]
        lines["train"] += [f"{folder} {i} {side}" for i in usable if i not in val_frames for side in "lr"]
    if not lines["val"]:
        lines["val"] = [f"{DATE}/{drive_folder(0)} {frames // 2} l"]
    lines["test"] = [f"{DATE}/{drive_folder(drives - 1)} {i} l" for i in usable]
    return lines


def _write_image(path: Path, rgb: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), params):
        raise OSError(f"could not write image {path}")


def _known_depth(depth: np.ndarray) -> np.ndarray:
    """Rendered depth with the sky (infinite) as 0, unknown, as depth maps store it."""
    return np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)


def _write_depth_png(path: Path, depth: np.ndarray) -> None:
    """KITTI's annotated-depth format: uint16 metres × 256, 0 = unknown (and beyond 255 m)."""
    scaled = np.round(_known_depth(depth) * 256.0)
    scaled[scaled > np.iinfo(np.uint16).max] = 0
    if not cv2.imwrite(str(path), scaled.astype(np.uint16), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write depth map {path}")


_DRIVES: dict[tuple[int, int, int], Drive] = {}


def _drive(seed: int, index: int, frames: int) -> Drive:
    key = (seed, index, frames)
    if key not in _DRIVES:
        _DRIVES.clear()  # a worker renders one drive at a time; keep one scene
        _DRIVES[key] = make_drive(seed, index, frames)
    return _DRIVES[key]


def render_frames(task: tuple) -> int:
    """Render and write frames ``start … stop − 1`` of one drive (a worker's unit of work)."""
    root, seed, index, frames, start, stop, width, height, img_ext, layout = task
    drive = _drive(seed, index, frames)
    intrinsics = Intrinsics.for_size(width, height)
    kitti = layout == "kitti"
    folder = Path(root) / (f"{DATE}/{drive_folder(index)}" if kitti else sequence_folder(index))
    for frame in range(start, stop):
        pose = drive.poses[frame]
        left = render_view(drive.scene, pose, intrinsics, width, height)
        right = render_view(drive.scene, right_camera_pose(pose), intrinsics, width, height)
        name = frame_name(frame)
        if kitti:
            _write_image(folder / "image_02" / "data" / f"{name}{img_ext}", left.rgb)
            _write_image(folder / "image_03" / "data" / f"{name}{img_ext}", right.rgb)
            velodyne_scan(drive.scene, pose, intrinsics, left).tofile(folder / "velodyne_points" / "data" / f"{name}.bin")
            for camera, view in (("image_02", left), ("image_03", right)):
                _write_depth_png(folder / "proj_depth" / "groundtruth" / camera / f"{name}.png", view.depth)
        else:
            _write_image(folder / f"{name}{img_ext}", left.rgb)
            _write_image(folder / "right" / f"{name}{img_ext}", right.rgb)
            np.save(folder / "depth" / f"{name}.npy", _known_depth(left.depth))
    return stop - start


def _keep_freed_memory() -> None:
    """Let glibc keep freed memory for reuse instead of returning it to the system.

    The renderer allocates and frees many strip-sized arrays per frame; with glibc's default
    thresholds a fresh worker hands them back and faults them in again, which cost as much
    system time as a third of the rendering here. No-op where glibc is not the C library.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _init_worker(seed: int, atlas: textures.Atlas) -> None:
    cv2.setNumThreads(1)  # the pool already keeps every core busy
    _keep_freed_memory()
    textures.install_atlas(seed, atlas)


def _check(drives: int, frames: int, seed: int, width: int, height: int, workers: int, img_ext: str, layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"--layout {layout!r}: must be one of {', '.join(LAYOUTS)}")
    if drives < 1:
        raise ValueError(f"--drives {drives}: need at least 1")
    if drives < 2 and layout == "kitti":
        raise ValueError(f"--drives {drives}: need at least 2 (training drives plus one held-out test drive)")
    if frames < 3:
        raise ValueError(f"--frames {frames}: need at least 3 (split lines need both temporal neighbours)")
    if seed < 0:
        raise ValueError(f"--seed {seed}: must be a non-negative integer")
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ValueError(f"image size {width}×{height}: width and height must lie in 16 … 8192")
    if workers < 1:
        raise ValueError(f"--workers {workers}: must be at least 1")
    if img_ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"--img-ext {img_ext!r}: must be one of {', '.join(IMAGE_EXTENSIONS)}")


def _remove_previous_output(root: Path) -> None:
    """Delete the drive folders a previous run recorded in ``root/synth_info.json``.

    Rewriting with fewer frames or drives would otherwise leave frames of another street behind.
    Only folders named like this module's drives are touched.
    """
    info_path = root / "synth_info.json"
    if not info_path.is_file():
        return
    try:
        folders = [d["folder"] for d in json.loads(info_path.read_text())["drives"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{info_path} is not a synthetic-drive info file ({error}); remove it or choose another --out"
        ) from None
    for folder in folders:
        ours = re.fullmatch(rf"{DATE}/{DATE}_drive_\d{{4}}_sync|drive_\d{{4}}", str(folder))
        if ours and (root / folder).is_dir():
            shutil.rmtree(root / folder)
    info_path.unlink()


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def write_synthetic_drives(
    out_dir: str | Path,
    drives: int = 4,
    frames: int = 120,
    seed: int = 0,
    width: int = 1242,
    height: int = 375,
    workers: int | None = None,
    progress: bool = True,
    img_ext: str = ".jpg",
    layout: str = "kitti",
) -> SynthSummary:
    """Render ``drives`` drives of ``frames`` stereo frames into ``out_dir``.

    ``layout="kitti"``: KITTI raw with calibration, Velodyne scans and split files; drives
    1 … N−1 are for training (and validation), drive N is held out for testing. ``layout="folder"``:
    the layout of ``--dataset folder`` (:mod:`mldanet.data.folder`) — ``drive_<n>/`` frames with
    ``right/`` images and dense ``depth/`` maps (metres, 0 for the sky), one ``camera.yaml``, no
    split files (training makes them). Output
    bytes depend only on the arguments other than ``workers`` and ``progress``. With
    ``workers`` > 1 (default: up to 2) frames are rendered in spawned processes, so a script that
    calls this needs the usual ``if __name__ == "__main__":`` guard. Drive folders of an earlier
    run recorded in ``out_dir/synth_info.json`` are replaced.
    """
    workers = default_workers() if workers is None else workers
    _check(drives, frames, seed, width, height, workers, img_ext, layout)
    began = time.perf_counter()
    root = Path(out_dir)
    if layout == "folder" and not (root / "synth_info.json").is_file():
        theirs = [root / "camera.yaml"] + [root / sequence_folder(d) for d in range(drives)]
        taken = next((path for path in theirs if path.exists()), None)
        if taken is not None:
            raise FileExistsError(
                f"{taken} exists and {root} is not a synth output (no synth_info.json): give an empty or new --out"
            )
    _remove_previous_output(root)
    date_dir = root / DATE
    if layout == "folder":
        for d in range(drives):
            for sub in ("right", "depth"):
                (root / sequence_folder(d) / sub).mkdir(parents=True, exist_ok=True)
        (root / "camera.yaml").write_text(camera_file(width, height))
    for d in range(drives if layout == "kitti" else 0):
        folder = date_dir / drive_folder(d)
        for sub in ("image_02", "image_03", "velodyne_points"):
            (folder / sub / "data").mkdir(parents=True, exist_ok=True)
            (folder / sub / "timestamps.txt").write_text(_timestamps(d, frames))
        for camera in ("image_02", "image_03"):
            (folder / "proj_depth" / "groundtruth" / camera).mkdir(parents=True, exist_ok=True)
    if layout == "kitti":
        (date_dir / "calib_cam_to_cam.txt").write_text(calib_cam_to_cam(Intrinsics.for_size(width, height), width, height))
        (date_dir / "calib_velo_to_cam.txt").write_text(calib_velo_to_cam())
        (date_dir / "calib_imu_to_velo.txt").write_text(calib_imu_to_velo())

    chunk = 6
    tasks = [
        (str(root), seed, d, frames, start, min(start + chunk, frames), width, height, img_ext, layout)
        for d in range(drives)
        for start in range(0, frames, chunk)
    ]
    bar = tqdm(total=drives * frames, desc="synth: rendering", unit="frame", disable=not progress)
    with bar:
        if workers == 1 or len(tasks) == 1:
            for task in tasks:
                bar.update(render_frames(task))
        else:
            atlas = textures.texture_atlas(seed)
            with ProcessPoolExecutor(
                max_workers=min(workers, len(tasks)), mp_context=get_context("spawn"),
                initializer=_init_worker, initargs=(seed, atlas),
            ) as pool:
                for done in pool.map(render_frames, tasks):
                    bar.update(done)

    split_dir = root / "splits" / SPLIT_NAME
    split_files = {}
    if layout == "kitti":
        split_dir.mkdir(parents=True, exist_ok=True)
        for name, lines in split_lines(drives, frames).items():
            split_files[name] = split_dir / f"{name}_files.txt"
            split_files[name].write_text("".join(line + "\n" for line in lines))

    names = tuple((drive_folder if layout == "kitti" else sequence_folder)(d) for d in range(drives))
    info_path = root / "synth_info.json"
    info = _info(seed, drives, frames, width, height, img_ext, split_files, root)
    if layout == "folder":
        info["layout"] = "folder"
        for drive in info["drives"]:
            drive["folder"], drive["role"] = sequence_folder(drive["index"]), "sequence"
    info_path.write_text(json.dumps(info, indent=1))
    return SynthSummary(
        root=root, date=DATE if layout == "kitti" else "", drives=names, train_drives=names[:-1], test_drive=names[-1], frames=frames,
        width=width, height=height, img_ext=img_ext, split_dir=split_dir, split_files=split_files,
        info_path=info_path, seconds=time.perf_counter() - began,
    )


def _info(seed, drives, frames, width, height, img_ext, split_files, root) -> dict:
    intrinsics = Intrinsics.for_size(width, height)
    return {
        "format": FORMAT,
        "seed": seed,
        "date": DATE,
        "width": width,
        "height": height,
        "frames": frames,
        "img_ext": img_ext,
        "intrinsics": {"fx": intrinsics.fx, "fy": intrinsics.fy, "cx": intrinsics.cx, "cy": intrinsics.cy,
                       "pixel_centres": "integer coordinates; calib files add 1 to cx, cy (KITTI 1-based)"},
        "K_norm": [list(row) for row in K_NORM],
        "baseline": BASELINE,
        "camera_height": CAMERA_HEIGHT,
        "velodyne": {
            "elevations_deg": [round(float(np.degrees(e)), 4) for e in VELODYNE_ELEVATIONS],
            "azimuth_step_deg": float(np.degrees(VELODYNE_AZIMUTH_STEP)),
            "max_range": VELODYNE_MAX_RANGE,
            "mount": "camera 2's centre; x forward, y left, z up",
        },
        "splits": {name: str(path.relative_to(root)) for name, path in split_files.items()},
        "drives": [
            {
                "index": d,
                "folder": f"{DATE}/{drive_folder(d)}",
                "role": "test" if d == drives - 1 else "train",
                "poses": [np.round(p, 12).tolist() for p in make_drive(seed, d, frames).poses],  # world-from-camera-2
            }
            for d in range(drives)
        ],
    }
