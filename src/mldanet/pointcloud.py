"""Depth maps as 3-D points: back-projection through a pinhole camera and a binary PLY writer.

Points are in the camera's frame (OpenCV's axes: x right, y down, z forward, origin at the camera
centre), in the depth map's units; a pixel's depth is its z, as everywhere in the project
(:func:`mldanet.geometry.backproject`). Pixel (u, v) has its centre at integer coordinates.

A picture of unknown camera gets :func:`default_intrinsics`: a horizontal field of view of
:data:`DEFAULT_HFOV_DEGREES` (60°), square pixels and the principal point at the image centre
(0.5·W, 0.5·H, the networks' convention).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mldanet.geometry import backproject, scale_intrinsics
from mldanet.paths import write_atomic

DEFAULT_HFOV_DEGREES = 60.0  # horizontal field of view assumed for a picture of unknown camera

# One vertex of the PLY body: float32 x y z then uchar red green blue (15 bytes, no padding).
VERTEX_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
PLY_TYPES = {"f": "float", "u": "uchar"}  # numpy kind of a VERTEX_DTYPE field -> its PLY type


def default_intrinsics(height: int, width: int, hfov_degrees: float = DEFAULT_HFOV_DEGREES) -> np.ndarray:
    """3×3 pixel K of a ``height``×``width`` picture of unknown camera: a horizontal field of view
    of ``hfov_degrees`` (60° by default), square pixels (fy = fx), principal point (0.5·W, 0.5·H)."""
    if not (height > 0 and width > 0):
        raise ValueError(f"image size {width}×{height} must be positive")
    if not 0 < hfov_degrees < 180:
        raise ValueError(f"field of view {hfov_degrees}° must lie strictly between 0° and 180°")
    focal = 0.5 * width / math.tan(math.radians(hfov_degrees) / 2)
    return np.array([[focal, 0.0, 0.5 * width], [0.0, focal, 0.5 * height], [0.0, 0.0, 1.0]])


def pixel_intrinsics(normalised_K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised K (4×4 or 3×3: row 0 ÷ width, row 1 ÷ height) → the 3×3 pixel K of a
    ``height``×``width`` image of the same picture."""
    normalised = np.asarray(normalised_K, dtype=np.float64)
    if normalised.shape not in ((3, 3), (4, 4)):
        raise ValueError(f"normalised K must be 3×3 or 4×4, got shape {normalised.shape}")
    return scale_intrinsics(torch.from_numpy(normalised[:3, :3].copy()), height, width).numpy()


def depth_to_points(depth: np.ndarray, K: np.ndarray, max_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Back-project a depth map through pixel intrinsics ``K``: ``depth(p) · K⁻¹ p`` per pixel.

    depth: H×W (z per pixel), K: 3×3 pixel intrinsics for that H×W → (points N×3 float64, mask
    H×W bool). The mask keeps the pixels of finite depth in (0, max_depth]: sky and far points
    (z > max_depth), zeros, negatives and NaN/inf are dropped. Points are the kept pixels in
    row-major order, so ``image[mask]`` gives their colours.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2 or 0 in depth.shape:
        raise ValueError(f"depth map must be H×W, got shape {depth.shape}")
    if not (isinstance(max_depth, numbers.Real) and math.isfinite(max_depth) and max_depth > 0):
        raise ValueError(f"max depth {max_depth!r} must be a positive number")
    inv_K = np.eye(4)
    inv_K[:3, :3] = np.linalg.inv(_checked_K(K))
    height, width = depth.shape
    values = depth.astype(np.float64)
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(values) & (values > 0) & (values <= max_depth)
    points = backproject(torch.from_numpy(np.where(mask, values, 0.0))[None, None], torch.from_numpy(inv_K)[None])
    return points[0, :3].T.numpy()[mask.reshape(-1)], mask


def _checked_K(K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise ValueError(f"camera matrix K must be 3×3 and finite, got shape {K.shape}")
    if not (K[0, 0] > 0 and K[1, 1] > 0) or not np.array_equal(K[2], [0, 0, 1]):
        raise ValueError(f"camera matrix K must be [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0, got {K.tolist()}")
    return K


def write_ply(path: str | Path, points: np.ndarray, colours: np.ndarray, comments: Sequence[str] = ()) -> Path:
    """Write a binary little-endian PLY of coloured vertices, atomically (temp file, then rename).

    points: N×3 (x y z, written as float32), colours: N×3 uint8 (red green blue); ``comments``
    become ``comment`` lines of the header (one line each). The body is one structured array
    written in one call.
    """
    points = np.asarray(points)
    colours = np.asarray(colours)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be N×3, got shape {points.shape}")
    if colours.shape != points.shape:
        raise ValueError(f"colours must be N×3 like the points ({points.shape}), got shape {colours.shape}")
    if colours.dtype != np.uint8:
        raise ValueError(f"colours must be uint8 (0–255), got {colours.dtype}")
    for comment in comments:
        if "\n" in comment or "\r" in comment:
            raise ValueError(f"PLY comment {comment!r} must be one line")
    vertices = np.empty(len(points), dtype=VERTEX_DTYPE)
    for axis, name in enumerate("xyz"):
        vertices[name] = points[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = colours[:, channel]
    header = "".join([
        "ply\n", "format binary_little_endian 1.0\n", *(f"comment {c}\n" for c in comments),
        f"element vertex {len(vertices)}\n",
        *(f"property {PLY_TYPES[VERTEX_DTYPE[name].kind]} {name}\n" for name in VERTEX_DTYPE.names),
        "end_header\n",
    ]).encode("ascii", errors="backslashreplace")

    def write(handle) -> None:
        handle.write(header)
        handle.write(memoryview(vertices).cast("B"))

    return write_atomic(path, write)
