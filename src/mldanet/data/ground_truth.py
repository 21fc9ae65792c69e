"""Ground-truth depth: Velodyne scans projected into a colour camera, and ``mldanet export-gt``.

The maps match monodepth2's ``gt_depths.npz`` (so numbers are comparable): the depth of a point
is its Velodyne x coordinate (forward distance), pixels come from ``P_rect · R_rect_00 ·
velo_to_cam`` rounded and shifted by one (monodepth2 keeps the 1-based pixel convention of
KITTI's MATLAB devkit), points behind the scanner or the camera are dropped and, where several
points land on a pixel, the nearest is kept. For ``eigen_benchmark`` the KITTI depth-completion annotations
(uint16 PNG, metres × 256) are read instead.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mldanet.data.calibration import image_size_from_calib, velo_to_image
from mldanet.data.images import CAMERA_FOLDERS, CAMERA_NUMBERS, frame_name
from mldanet.data.splits import parse_split_line, read_split_lines

EVAL_SIZE = (375, 1242)  # (height, width) monodepth2 resizes validation ground truth to
BENCHMARK_SPLIT = "eigen_benchmark"


def calib_dir(root: str | Path, folder: str) -> Path:
    """The date folder holding the calibration files of drive ``<date>/<drive>``."""
    return Path(root) / folder.split("/")[0]


def velodyne_path(root: str | Path, folder: str, frame_index: int) -> Path:
    return Path(root) / folder / "velodyne_points" / "data" / f"{frame_name(frame_index)}.bin"


def load_velodyne_points(path: str | Path) -> np.ndarray:
    """N×4 float32 (x forward, y left, z up, reflectance) from a KITTI ``.bin`` scan."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Velodyne scan not found: {path}")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % 4:
        raise ValueError(f"Velodyne scan is truncated ({raw.size} floats, not a multiple of 4): {path}")
    return raw.reshape(-1, 4)


def generate_depth_map(calib_dir: str | Path, velo_path: str | Path, cam: int = 2) -> np.ndarray:
    """H×W float32 depth in metres (0 = no point) of scan ``velo_path`` seen by camera ``cam``.

    H×W is the rectified image size (``S_rect_0{cam}``); see the module docstring for the
    projection conventions.
    """
    height, width = image_size_from_calib(calib_dir, cam)
    projection = velo_to_image(calib_dir, cam)
    points = load_velodyne_points(velo_path).astype(np.float64)
    points = points[points[:, 0] >= 0]
    homogeneous = np.concatenate([points[:, :3], np.ones((len(points), 1))], axis=1)
    pixels = homogeneous @ projection.T
    in_front = pixels[:, 2] > 0
    points, pixels = points[in_front], pixels[in_front]
    u = np.round(pixels[:, 0] / pixels[:, 2]).astype(np.int64) - 1
    v = np.round(pixels[:, 1] / pixels[:, 2]).astype(np.int64) - 1
    inside = (u >= 0) & (v >= 0) & (u < width) & (v < height)
    depth = np.full((height, width), np.inf)
    np.minimum.at(depth, (v[inside], u[inside]), points[inside, 0])
    depth[~np.isfinite(depth)] = 0
    return depth.astype(np.float32)


def resize_depth_nearest(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize sampling at pixel centres (as scikit-image's ``order=0`` does)."""
    if depth.shape == (height, width):
        return depth
    return cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def benchmark_depth_path(benchmark_dir: str | Path, folder: str, frame_index: int, side: str) -> Path:
    """The annotated map of a frame: ``<dir>/<date>/<drive>/proj_depth/...`` (monodepth2's layout) or
    ``<dir>/{train,val}/<drive>/proj_depth/...`` (as the KITTI depth archive unpacks)."""
    tail = Path("proj_depth") / "groundtruth" / CAMERA_FOLDERS[side] / f"{frame_name(frame_index)}.png"
    drive = folder.split("/")[1]
    candidates = [Path(benchmark_dir) / folder / tail] + [
        Path(benchmark_dir) / part / drive / tail for part in ("train", "val")
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"annotated depth not found: {candidates[0]} (nor under train/ or val/)")


def load_benchmark_depth(path: str | Path) -> np.ndarray:
    """Depth in metres from a KITTI depth-completion uint16 PNG (value / 256; 0 = no measurement)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint16 or image.ndim != 2:
        raise ValueError(f"not a single-channel uint16 depth PNG: {path}")
    return image.astype(np.float32) / 256.0


def ground_truth_for_line(data_path: str | Path, line: str, benchmark_dir: str | Path | None = None) -> np.ndarray:
    """The native-size ground-truth map of one split line."""
    folder, frame_index, side = parse_split_line(line)
    if benchmark_dir is not None:
        return load_benchmark_depth(benchmark_depth_path(benchmark_dir, folder, frame_index, side))
    return generate_depth_map(
        calib_dir(data_path, folder), velodyne_path(data_path, folder, frame_index), CAMERA_NUMBERS[side]
    )


def save_gt_depths(maps: list[np.ndarray], out: str | Path) -> Path:
    """Write ``maps`` to ``out`` (.npz, key ``data``, an object array as monodepth2 writes it), atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = np.empty(len(maps), dtype=object)
    for i, depth in enumerate(maps):
        data[i] = depth.astype(np.float32)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, data=data)
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return out


def load_gt_depths(path: str | Path) -> list[np.ndarray]:
    """The float32 depth maps of a ``gt_depths.npz`` (ours or monodepth2's)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {path} (write it with `mldanet export-gt`)")
    try:
        archive = np.load(path, allow_pickle=True, encoding="latin1")
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read ground-truth file {path}: {error}") from None
    with archive:
        if "data" not in archive.files:
            raise ValueError(f"{path} has no 'data' array (found: {', '.join(archive.files) or 'none'})")
        data = archive["data"]
    return [np.asarray(depth, dtype=np.float32) for depth in data]


def export_gt_depths(
    data_path: str | Path,
    lines: list[str],
    out: str | Path,
    benchmark_dir: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Ground truth of every line, in order, into ``out`` (see :func:`save_gt_depths`)."""
    maps = [
        ground_truth_for_line(data_path, line, benchmark_dir)
        for line in tqdm(lines, desc="ground truth", unit="frame", disable=not progress)
    ]
    return save_gt_depths(maps, out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-path", required=True, help="KITTI raw root (<root>/<date>/<drive>_sync/...)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", help="split name: its test_files.txt is exported (eigen, eigen_benchmark, ...)")
    source.add_argument("--split-file", help="any split file")
    parser.add_argument("--splits-dir", help="folder of split folders (default: $MLDANET_SPLITS_DIR)")
    parser.add_argument("--out", required=True, help="output .npz (key 'data')")
    parser.add_argument("--benchmark-dir", help="KITTI depth-completion annotations (needed for eigen_benchmark)")


def run(args: argparse.Namespace) -> int:
    if not Path(args.data_path).is_dir():
        raise FileNotFoundError(f"data path not found: {args.data_path}")
    if args.split == BENCHMARK_SPLIT and not args.benchmark_dir:
        raise ValueError(f"split {BENCHMARK_SPLIT} uses the annotated depth maps: give --benchmark-dir")
    if args.benchmark_dir and not Path(args.benchmark_dir).is_dir():
        raise FileNotFoundError(f"benchmark directory not found: {args.benchmark_dir}")
    lines = read_split_lines(args.split_file or args.split, "test", args.splits_dir)
    out = export_gt_depths(args.data_path, lines, args.out, args.benchmark_dir)
    print(f"wrote {len(lines)} ground-truth maps to {out}")
    return 0
