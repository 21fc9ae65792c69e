"""How ``mldanet synth`` stores its drives in a dataset's layout (torch-free: the renderer's workers import it).

A :class:`SynthLayout` says where a drive's files go and what a layout holds besides the frames;
:mod:`mldanet.synth.writer` renders the views and hands them over. A dataset class names its
layout (``FrameDataset.synth_layout``, a key of :data:`SYNTH_LAYOUTS`: data never imports the
renderer), so ``mldanet synth --layout DATASET`` writes drives that dataset reads.

``kitti`` (:class:`KittiRawLayout`)::

    OUT/<DATE>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
    OUT/<DATE>/<DATE>_drive_<nnnn>_sync/image_02/data/<10 digits>.jpg|png   (+ timestamps.txt)
                                        image_03/data/...
                                        velodyne_points/data/<10 digits>.bin  float32 × 4
                                        proj_depth/groundtruth/image_0{2,3}/<10 digits>.png  dense depth
    OUT/splits/synth/{train,val,test}_files.txt

``folder`` (:class:`FolderLayout`, ``--dataset folder``): ``OUT/drive_<nnnn>/<10 digits>.jpg|png``
with ``right/`` images and dense ``depth/<10 digits>.npy`` maps (metres, 0 for the sky), one
``OUT/camera.yaml``, no split files (training makes them).

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

import datetime
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from mldanet.synth.render import View
from mldanet.synth.rig import BASELINE, Intrinsics

DATE = "2000_01_01"  # not a KITTI recording date, so synthetic drives never pass for real ones
SPLIT_NAME = "synth"
JPEG_QUALITY = 95
VAL_EVERY = 20  # every 20th frame (from the 10th) of the training drives is held out for validation


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




class SynthLayout:
    """Where one layout puts a synthetic drive set's files under the output root.

    ``name`` is its key in :data:`SYNTH_LAYOUTS`; ``date`` the folder the drives share ("" for
    none); ``min_drives`` how many it needs, and why; ``owned`` a regular expression of the drive
    folders it writes (an earlier run's are replaced, nothing else is touched).
    """

    name = ""
    date = ""
    min_drives = 1
    min_drives_reason = "at least one drive"
    owned = ""

    def drive_folder(self, index: int) -> str:
        """Drive ``index``'s folder (0-based), relative to the root."""
        raise NotImplementedError

    def check_root(self, root: Path, drives: int) -> None:
        """Refuse a root that holds someone else's files this layout would write over."""

    def prepare(self, root: Path, drives: int, frames: int, width: int, height: int) -> None:
        """The folders and the per-root files (calibration, camera) before any frame is written."""
        raise NotImplementedError

    def write_frame(self, folder: Path, name: str, img_ext: str, left: View, right: View, scan: Callable[[], np.ndarray]) -> None:
        """One stereo frame of the drive in ``folder``; ``scan()`` renders its Velodyne scan when the layout keeps one."""
        raise NotImplementedError

    def write_splits(self, root: Path, drives: int, frames: int) -> dict[str, Path]:
        """The split files of the drives ("train" | "val" | "test" -> file); none by default."""
        return {}

    def role(self, index: int, drives: int) -> str:
        """What drive ``index`` is for, as ``synth_info.json`` records it."""
        return "test" if index == drives - 1 else "train"

    def describe(self, info: dict) -> None:
        """What the layout adds to ``synth_info.json``."""

    def next_steps(self, root: Path, test_drive: str, split_files: dict[str, Path]) -> list[str]:
        """What ``mldanet synth`` prints after writing: where things are and how to train on them."""
        return []


class KittiRawLayout(SynthLayout):
    """KITTI raw: calibration, both cameras, Velodyne scans, dense depth where KITTI's annotated maps lie, splits."""

    name = "kitti"
    date = DATE
    min_drives = 2
    min_drives_reason = "training drives plus one held-out test drive"
    owned = rf"{DATE}/{DATE}_drive_\d{{4}}_sync"

    def drive_folder(self, index: int) -> str:
        return f"{DATE}/{drive_folder(index)}"

    def prepare(self, root: Path, drives: int, frames: int, width: int, height: int) -> None:
        date_dir = root / DATE
        for d in range(drives):
            folder = date_dir / drive_folder(d)
            for sub in ("image_02", "image_03", "velodyne_points"):
                (folder / sub / "data").mkdir(parents=True, exist_ok=True)
                (folder / sub / "timestamps.txt").write_text(_timestamps(d, frames))
            for camera in ("image_02", "image_03"):
                (folder / "proj_depth" / "groundtruth" / camera).mkdir(parents=True, exist_ok=True)
        (date_dir / "calib_cam_to_cam.txt").write_text(calib_cam_to_cam(Intrinsics.for_size(width, height), width, height))
        (date_dir / "calib_velo_to_cam.txt").write_text(calib_velo_to_cam())
        (date_dir / "calib_imu_to_velo.txt").write_text(calib_imu_to_velo())

    def write_frame(self, folder: Path, name: str, img_ext: str, left: View, right: View, scan: Callable[[], np.ndarray]) -> None:
        _write_image(folder / "image_02" / "data" / f"{name}{img_ext}", left.rgb)
        _write_image(folder / "image_03" / "data" / f"{name}{img_ext}", right.rgb)
        scan().tofile(folder / "velodyne_points" / "data" / f"{name}.bin")
        for camera, view in (("image_02", left), ("image_03", right)):
            _write_depth_png(folder / "proj_depth" / "groundtruth" / camera / f"{name}.png", view.depth)

    def write_splits(self, root: Path, drives: int, frames: int) -> dict[str, Path]:
        split_dir = root / "splits" / SPLIT_NAME
        split_dir.mkdir(parents=True, exist_ok=True)
        files = {}
        for name, lines in split_lines(drives, frames).items():
            files[name] = split_dir / f"{name}_files.txt"
            files[name].write_text("".join(line + "\n" for line in lines))
        return files

    def next_steps(self, root: Path, test_drive: str, split_files: dict[str, Path]) -> list[str]:
        return [f"test drive (held out): {test_drive}"] + [
            f"{name:>5} split: {path} ({sum(1 for _ in path.open())} lines)" for name, path in split_files.items()
        ] + [f"poses and intrinsics: {root / 'synth_info.json'}"]


class FolderLayout(SynthLayout):
    """``--dataset folder``: frames, ``right/`` images and ``depth/`` maps per sequence, one ``camera.yaml``."""

    name = "folder"
    owned = r"drive_\d{4}"

    def drive_folder(self, index: int) -> str:
        return sequence_folder(index)

    def check_root(self, root: Path, drives: int) -> None:
        if (root / "synth_info.json").is_file():
            return
        theirs = [root / "camera.yaml"] + [root / sequence_folder(d) for d in range(drives)]
        taken = next((path for path in theirs if path.exists()), None)
        if taken is not None:
            raise FileExistsError(
                f"{taken} exists and {root} is not a synth output (no synth_info.json): give an empty or new --out"
            )

    def prepare(self, root: Path, drives: int, frames: int, width: int, height: int) -> None:
        for d in range(drives):
            for sub in ("right", "depth"):
                (root / sequence_folder(d) / sub).mkdir(parents=True, exist_ok=True)
        (root / "camera.yaml").write_text(camera_file(width, height))

    def write_frame(self, folder: Path, name: str, img_ext: str, left: View, right: View, scan: Callable[[], np.ndarray]) -> None:
        _write_image(folder / f"{name}{img_ext}", left.rgb)
        _write_image(folder / "right" / f"{name}{img_ext}", right.rgb)
        np.save(folder / "depth" / f"{name}.npy", _known_depth(left.depth))

    def role(self, index: int, drives: int) -> str:
        return "sequence"

    def describe(self, info: dict) -> None:
        info["layout"] = self.name

    def next_steps(self, root: Path, test_drive: str, split_files: dict[str, Path]) -> list[str]:
        return [f"camera: {root / 'camera.yaml'}; train with: mldanet train --dataset folder --data-path {root}"]


# The layouts ``mldanet synth`` writes, by the name a dataset class gives in ``synth_layout``.
SYNTH_LAYOUTS: dict[str, SynthLayout] = {layout.name: layout for layout in (KittiRawLayout(), FolderLayout())}
