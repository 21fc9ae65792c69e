"""Renders synthetic drives into a dataset's layout (:mod:`mldanet.synth.layouts`, which says where
every file goes) and writes ``OUT/synth_info.json``: seed, sizes, intrinsics, baseline and the
per-frame poses. With several workers, frames are rendered in spawned processes, six at a time.
"""

from __future__ import annotations

import ctypes
import functools
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
from mldanet.synth.layouts import DATE, SPLIT_NAME, SYNTH_LAYOUTS, SynthLayout, frame_name
from mldanet.synth.render import (
    VELODYNE_AZIMUTH_STEP,
    VELODYNE_ELEVATIONS,
    VELODYNE_MAX_RANGE,
    render_view,
    velodyne_scan,
)
from mldanet.synth.rig import BASELINE, CAMERA_HEIGHT, K_NORM, Intrinsics, right_camera_pose
from mldanet.synth.scene import Drive, make_drive

IMAGE_EXTENSIONS = (".jpg", ".png")
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
    folder = Path(root) / layout.drive_folder(index)
    for frame in range(start, stop):
        pose = drive.poses[frame]
        left = render_view(drive.scene, pose, intrinsics, width, height)
        right = render_view(drive.scene, right_camera_pose(pose), intrinsics, width, height)
        scan = functools.partial(velodyne_scan, drive.scene, pose, intrinsics, left)
        layout.write_frame(folder, frame_name(frame), img_ext, left, right, scan)
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


def synth_layout(layout: str | SynthLayout) -> SynthLayout:
    """``layout`` itself, or the layout of that name in :data:`SYNTH_LAYOUTS`."""
    if isinstance(layout, SynthLayout):
        return layout
    if layout not in SYNTH_LAYOUTS:
        raise ValueError(f"--layout {layout!r}: must be one of {', '.join(SYNTH_LAYOUTS)}")
    return SYNTH_LAYOUTS[layout]


def _check(
    drives: int, frames: int, seed: int, width: int, height: int, workers: int, img_ext: str, layout: SynthLayout
) -> None:
    if drives < 1:
        raise ValueError(f"--drives {drives}: need at least 1")
    if drives < layout.min_drives:
        raise ValueError(f"--drives {drives}: need at least {layout.min_drives} ({layout.min_drives_reason})")
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
    owned = "|".join(layout.owned for layout in SYNTH_LAYOUTS.values())
    for folder in folders:
        ours = re.fullmatch(owned, str(folder))
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
    layout: str | SynthLayout = "kitti",
) -> SynthSummary:
    """Render ``drives`` drives of ``frames`` stereo frames into ``out_dir``, in ``layout`` (a
    :class:`~mldanet.synth.layouts.SynthLayout` or its name in ``SYNTH_LAYOUTS``).

    ``"kitti"``: KITTI raw with calibration, Velodyne scans and split files; drives 1 … N−1 are for
    training (and validation), drive N is held out for testing. ``"folder"``: the layout of
    ``--dataset folder`` (:mod:`mldanet.data.folder`), no split files (training makes them). Output
    bytes depend only on the arguments other than ``workers`` and ``progress``. With
    ``workers`` > 1 (default: up to 2) frames are rendered in spawned processes, so a script that
    calls this needs the usual ``if __name__ == "__main__":`` guard. Drive folders of an earlier
    run recorded in ``out_dir/synth_info.json`` are replaced.
    """
    workers = default_workers() if workers is None else workers
    layout = synth_layout(layout)
    _check(drives, frames, seed, width, height, workers, img_ext, layout)
    began = time.perf_counter()
    root = Path(out_dir)
    layout.check_root(root, drives)
    _remove_previous_output(root)
    layout.prepare(root, drives, frames, width, height)

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

    split_files = layout.write_splits(root, drives, frames)
    names = tuple(Path(layout.drive_folder(d)).name for d in range(drives))
    info_path = root / "synth_info.json"
    info = _info(seed, drives, frames, width, height, img_ext, split_files, root, layout)
    layout.describe(info)
    info_path.write_text(json.dumps(info, indent=1))
    return SynthSummary(
        root=root, date=layout.date, drives=names, train_drives=names[:-1], test_drive=names[-1], frames=frames,
        width=width, height=height, img_ext=img_ext, split_dir=root / "splits" / SPLIT_NAME, split_files=split_files,
        info_path=info_path, seconds=time.perf_counter() - began,
    )


def _info(seed, drives, frames, width, height, img_ext, split_files, root, layout: SynthLayout) -> dict:
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
                "folder": layout.drive_folder(d),
                "role": layout.role(d, drives),
                "poses": [np.round(p, 12).tolist() for p in make_drive(seed, d, frames).poses],  # world-from-camera-2
            }
            for d in range(drives)
        ],
    }
