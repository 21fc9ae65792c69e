"""Ground-truth depth: Velodyne scans projected into a colour camera, and ``mldanet export-gt``.

The maps match monodepth2's ``gt_depths.npz`` (so numbers are comparable): the depth of a point
is its Velodyne x coordinate (forward distance), pixels come from ``P_rect · R_rect_00 ·
velo_to_cam`` rounded and shifted by one (monodepth2 keeps the 1-based pixel convention of
KITTI's MATLAB devkit), points behind the scanner are dropped and, where several points land on
a pixel, the nearest is kept, by monodepth2's rule and its quirk at column 0 unless
``--exact-min`` (see :func:`generate_depth_map`). For ``eigen_benchmark`` the KITTI
depth-completion annotations (uint16 PNG, metres × 256) are read instead. The ``.npz`` also
stores the split lines, so evaluation can tell the ground truth of another split.
"""

from __future__ import annotations

import numbers

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mldanet.data.calibration import image_size_from_calib, velo_to_image
from mldanet.data.images import CAMERA_FOLDERS, CAMERA_NUMBERS, frame_name
from mldanet.data.npy import load_npz
from mldanet.data.splits import parse_split_line
from mldanet.paths import write_atomic

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


def project_scan(
    calib_dir: str | Path, velo_path: str | Path, cam: int, in_front_only: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns (0-based, in the image) and depths of the scan's points that land in the image.

    As monodepth2: only points behind the scanner (x < 0) are dropped before projecting, pixels
    are rounded and shifted by one, and the points keep their order in the scan.
    ``in_front_only`` also drops the points behind the camera (z ≤ 0), whose projection is
    mirrored through the centre of the image.
    """
    height, width = image_size_from_calib(calib_dir, cam)
    projection = velo_to_image(calib_dir, cam)
    points = load_velodyne_points(velo_path).astype(np.float64)
    points = points[points[:, 0] >= 0]
    homogeneous = np.concatenate([points[:, :3], np.ones((len(points), 1))], axis=1)
    pixels = np.dot(projection, homogeneous.T).T  # monodepth2's product, term for term
    with np.errstate(divide="ignore", invalid="ignore"):
        # a point in the camera plane (z = 0) divides to inf/nan and fails the bounds test below
        u = np.round(pixels[:, 0] / pixels[:, 2]) - 1
        v = np.round(pixels[:, 1] / pixels[:, 2]) - 1
        inside = (u >= 0) & (v >= 0) & (u < width) & (v < height)
    if in_front_only:
        inside &= pixels[:, 2] > 0
    return v[inside].astype(np.int64), u[inside].astype(np.int64), points[inside, 0]


def monodepth2_depth(rows: np.ndarray, cols: np.ndarray, depths: np.ndarray, height: int, width: int) -> np.ndarray:
    """H×W float64 map by monodepth2's duplicate rule, quirk included (see :func:`generate_depth_map`)."""
    depth = np.zeros((height, width))
    pixel = rows * width + cols
    # each pixel first takes its LAST point, as numpy's fancy assignment does in monodepth2
    order = np.arange(len(pixel))
    last = np.full(height * width, -1, np.int64)
    np.maximum.at(last, pixel, order)
    hit = np.flatnonzero(last >= 0)
    depth.flat[hit] = depths[last[hit]]
    # then every group of points sharing monodepth2's sub2ind key row·(W−1) + col − 1 writes its
    # minimum depth at the pixel of its FIRST point; (r, 0) and (r − 1, W − 1) share a key
    key = rows * (width - 1) + cols - 1
    _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    group_min = np.full(len(first), np.inf)
    np.minimum.at(group_min, inverse.ravel(), depths)
    shared = counts > 1
    depth.flat[pixel[first[shared]]] = group_min[shared]
    return depth


def nearest_point_depth(rows: np.ndarray, cols: np.ndarray, depths: np.ndarray, height: int, width: int) -> np.ndarray:
    """H×W float64 map holding, at every pixel, the smallest depth of the points on it (0 = none)."""
    depth = np.full((height, width), np.inf)
    np.minimum.at(depth, (rows, cols), depths)
    depth[~np.isfinite(depth)] = 0
    return depth


def generate_depth_map(calib_dir: str | Path, velo_path: str | Path, cam: int = 2, exact_min: bool = False) -> np.ndarray:
    """H×W float32 depth in metres (0 = no point) of scan ``velo_path`` seen by camera ``cam``.

    H×W is the rectified image size (``S_rect_0{cam}``); see the module docstring for the
    projection conventions.

    By default the map is monodepth2's, bit for bit, so published numbers compare to the last
    decimal. That includes a quirk of its duplicate handling: points are grouped by
    ``sub2ind = row·(W−1) + col − 1`` (not ``row·W + col``), so pixel (r, 0) and pixel
    (r − 1, W − 1) fall into one group, and a group's minimum depth is written at the pixel of its
    first point (in scan order) only. A pixel in column 0 can so take the depth of a nearer point
    at the right end of the row above (on the real KITTI frame of the tests, 2 of 19 100 pixels:
    8.83 m instead of 10.92 m), and the other pixel of such a group keeps its last point's depth.
    Points in front of the scanner but behind the camera are projected (monodepth2 does not test
    the camera's z either).

    ``exact_min=True`` gives the true per-pixel minimum instead, of the points in front of the
    camera only.
    """
    height, width = image_size_from_calib(calib_dir, cam)
    if exact_min:
        depth = nearest_point_depth(*project_scan(calib_dir, velo_path, cam, in_front_only=True), height, width)
    else:
        depth = monodepth2_depth(*project_scan(calib_dir, velo_path, cam), height, width)
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


def ground_truth_for_line(
    data_path: str | Path, line: str, benchmark_dir: str | Path | None = None, exact_min: bool = False
) -> np.ndarray:
    """The native-size ground-truth map of one split line (``exact_min``: see :func:`generate_depth_map`)."""
    folder, frame_index, side = parse_split_line(line)
    if benchmark_dir is not None:
        return load_benchmark_depth(benchmark_depth_path(benchmark_dir, folder, frame_index, side))
    return generate_depth_map(
        calib_dir(data_path, folder), velodyne_path(data_path, folder, frame_index), CAMERA_NUMBERS[side], exact_min
    )


@dataclass(frozen=True)
class GroundTruth:
    """The maps of a ``gt_depths.npz`` and, when we wrote it, the split lines they belong to."""

    maps: list[np.ndarray]
    lines: list[str] | None  # None: a file from elsewhere (monodepth2's), which does not say


def save_gt_depths(maps: list[np.ndarray], out: str | Path, lines: Sequence[str] | None = None) -> Path:
    """Write ``maps`` to ``out`` (.npz, key ``data``, an object array as monodepth2 writes it), atomically.

    ``lines`` (one per map, the split lines they were made for) are stored beside as ``lines``, a
    string array, so that evaluation can refuse the ground truth of another split of equal length.
    """
    out = Path(out)
    if lines is not None and len(lines) != len(maps):
        raise ValueError(f"{len(maps)} ground-truth maps but {len(lines)} split lines for {out}: give one line per map")
    data = np.empty(len(maps), dtype=object)
    for i, depth in enumerate(maps):
        data[i] = depth.astype(np.float32)
    arrays = {"data": data}
    if lines is not None:
        arrays["lines"] = np.array([line.strip() for line in lines], dtype=str)
    return write_atomic(out, lambda handle: np.savez_compressed(handle, **arrays))


def read_gt_depths(path: str | Path) -> GroundTruth:
    """The float32 depth maps of a ``gt_depths.npz`` (ours or monodepth2's) and its split lines, if stored.

    monodepth2's ``data`` is an object array of float arrays, i.e. a pickle: it is rebuilt by an
    unpickler that can only make NumPy arrays (:mod:`mldanet.data.npy`), so a file carrying code
    is refused without running it. A plain N×H×W array is read without any pickle.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ground-truth file not found: {path} (write it with `mldanet export-gt`)")
    arrays = load_npz(path, "ground-truth file", allow_objects=("data",))
    if "data" not in arrays:
        raise ValueError(f"{path} has no 'data' array (found: {', '.join(arrays) or 'none'})")
    data = arrays["data"]
    if data.dtype.hasobject:
        maps = _maps_of_object_array(data, path)
    elif data.ndim != 3 or not _is_real(data.dtype):
        raise ValueError(f"ground-truth file {path}: 'data' is a {data.ndim}-D {data.dtype} array, not N H×W depth maps")
    else:
        maps = [np.asarray(depth, dtype=np.float32) for depth in data]
    lines = None
    if "lines" in arrays:
        stored = arrays["lines"]
        if stored.ndim != 1 or stored.dtype.kind != "U" or len(stored) != len(maps):
            raise ValueError(
                f"ground-truth file {path}: 'lines' is not one split line per map ({stored.shape} {stored.dtype} "
                f"for {len(maps)} maps): export it again with `mldanet export-gt`"
            )
        lines = [str(line) for line in stored]
    return GroundTruth(maps, lines)


def _maps_of_object_array(data: np.ndarray, path: Path) -> list[np.ndarray]:
    """float32 H×W maps of an object array as writers leave it: N of H×W arrays (monodepth2's, sizes may
    differ), or N×H×W numbers (``np.array(maps, dtype=object)`` when every map has one size)."""
    if data.ndim == 3:
        return [_numbers(depth, path, f"map {i}") for i, depth in enumerate(data)]
    if data.ndim != 1:
        raise ValueError(
            f"ground-truth file {path}: 'data' is a {data.ndim}-D object array, neither N depth maps nor N×H×W depths"
        )
    maps = []
    for i, depth in enumerate(data):
        if not (isinstance(depth, np.ndarray) and depth.ndim == 2 and (_is_real(depth.dtype) or depth.dtype.hasobject)):
            kind = f"{depth.ndim}-D {depth.dtype} array" if isinstance(depth, np.ndarray) else type(depth).__name__
            raise ValueError(f"ground-truth file {path}: map {i} is a {kind}, not an H×W array of depths")
        maps.append(_numbers(depth, path, f"map {i}") if depth.dtype.hasobject else np.asarray(depth, dtype=np.float32))
    return maps


def _numbers(depth: np.ndarray, path: Path, what: str) -> np.ndarray:
    """An H×W object array whose every element is a real number, as float32."""
    for value in depth.flat:
        if not isinstance(value, (numbers.Real, np.bool_)):
            raise ValueError(f"ground-truth file {path}: {what} holds a {type(value).__name__}, not a number")
    return np.asarray(depth, dtype=np.float32)


def _is_real(dtype: np.dtype) -> bool:
    """Floats, integers or booleans: what a depth map may be stored as."""
    return dtype.kind in "fiub"


def load_gt_depths(path: str | Path) -> list[np.ndarray]:
    """The float32 depth maps of a ``gt_depths.npz`` (ours or monodepth2's); see :func:`read_gt_depths`."""
    return read_gt_depths(path).maps


def export_gt_depths(
    data_path: str | Path,
    lines: list[str],
    out: str | Path,
    benchmark_dir: str | Path | None = None,
    progress: bool = True,
    exact_min: bool = False,
) -> Path:
    """Ground truth of every line, in order, into ``out`` with the lines (see :func:`save_gt_depths`)."""
    maps = [
        ground_truth_for_line(data_path, line, benchmark_dir, exact_min)
        for line in tqdm(lines, desc="ground truth", unit="frame", disable=not progress)
    ]
    return save_gt_depths(maps, out, lines)
