"""Back-projection against closed forms (a rendered plane), the PLY writer against an independent reader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mldanet.pointcloud import (
    DEFAULT_HFOV_DEGREES, default_intrinsics, depth_to_points, pixel_intrinsics, write_ply,
)

# An off-centre camera with non-square pixels, so that swapped axes or rows would show.
K = np.array([[500.0, 0.0, 70.3], [0.0, 460.0, 41.7], [0.0, 0.0, 1.0]])
HEIGHT, WIDTH = 90, 150

PLY_NUMPY_TYPES = {  # PLY scalar type names (both spellings) -> little-endian numpy types
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "<i2", "int16": "<i2",
    "ushort": "<u2", "uint16": "<u2", "int": "<i4", "int32": "<i4", "uint": "<u4", "uint32": "<u4",
    "float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8",
}


def read_ply(path: Path) -> tuple[dict, np.ndarray]:
    """An independent reader of a binary little-endian PLY with one vertex element: (header, vertices)."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    lines = data[:end].decode("ascii").splitlines()
    assert lines[0] == "ply" and lines[1] == "format binary_little_endian 1.0", lines[:2]
    header = {"comments": [], "properties": [], "count": None}
    for line in lines[2:-1]:
        word, _, rest = line.partition(" ")
        if word == "comment":
            header["comments"].append(rest)
        elif word == "element":
            kind, count = rest.split()
            assert kind == "vertex" and header["count"] is None
            header["count"] = int(count)
        elif word == "property":
            ply_type, name = rest.split()
            header["properties"].append((name, PLY_NUMPY_TYPES[ply_type]))
        else:
            raise AssertionError(f"unexpected header line {line!r}")
    dtype = np.dtype(header["properties"])
    body = data[end:]
    assert len(body) == header["count"] * dtype.itemsize, "body size does not match the header"
    return header, np.frombuffer(body, dtype=dtype, count=header["count"])


def render_plane(normal: np.ndarray, distance: float) -> np.ndarray:
    """HEIGHT×WIDTH depth (z) of the plane n·X = d seen by K: along pixel p's ray r = K⁻¹p, z = d / (n·r)."""
    v, u = np.mgrid[:HEIGHT, :WIDTH].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    with np.errstate(divide="ignore"):
        return distance / (rays @ normal)


def test_a_rendered_plane_gives_points_on_that_plane():
    normal = np.array([0.05, 1.0, -0.02])  # a tilted road 1.65 below the camera (y down), horizon in view
    normal /= np.linalg.norm(normal)
    distance = 1.65
    depth = render_plane(normal, distance)  # above the horizon the plane is behind the camera: negative depth
    points, mask = depth_to_points(depth, K, max_depth=50.0)
    assert (depth < 0).any() and (depth > 50.0).any()  # both cut
    np.testing.assert_array_equal(mask, (depth > 0) & (depth <= 50.0))
    assert 1000 < len(points) < HEIGHT * WIDTH and points.dtype == np.float64

    centroid = points.mean(axis=0)
    _, singular, vt = np.linalg.svd(points - centroid, full_matrices=False)
    fitted = vt[-1]
    assert singular[-1] / math.sqrt(len(points)) < 1e-12  # rms distance from the least-squares plane
    assert singular[1] > 1.0  # a plane, not a line
    sign = np.sign(fitted @ normal)
    np.testing.assert_allclose(sign * fitted, normal, atol=1e-12)
    np.testing.assert_allclose(sign * fitted @ centroid, distance, rtol=1e-12)
    np.testing.assert_allclose(points @ normal, distance, rtol=1e-12)


def test_points_are_the_kept_pixels_in_row_major_order_in_closed_form():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 20.0, (HEIGHT, WIDTH)).astype(np.float32)
    points, mask = depth_to_points(depth, K, max_depth=100.0)
    assert mask.all()
    v, u = np.divmod(np.arange(HEIGHT * WIDTH), WIDTH)
    z = depth.reshape(-1).astype(np.float64)
    expected = np.stack([(u - 70.3) * z / 500.0, (v - 41.7) * z / 460.0, z], axis=1)
    np.testing.assert_allclose(points, expected, rtol=1e-12, atol=1e-12)


def test_sky_far_and_invalid_depths_are_dropped():
    depth = np.full((3, 4), 5.0, dtype=np.float32)
    depth[0, 0], depth[0, 1], depth[1, 2] = np.nan, np.inf, -np.inf
    depth[2, 0], depth[2, 1] = 0.0, -3.0
    depth[2, 2], depth[2, 3] = 80.0, 80.001  # exactly max_depth stays, beyond goes
    points, mask = depth_to_points(depth, np.array([[2.0, 0, 1.5], [0, 2.0, 1.0], [0, 0, 1]]), max_depth=80.0)
    expected = np.ones((3, 4), bool)
    expected[0, :2] = expected[1, 2] = expected[2, :2] = expected[2, 3] = False
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(points[:, 2], depth[expected].astype(np.float64))
    assert np.isfinite(points).all()


@pytest.mark.parametrize("depth, K_, max_depth, message", [
    (np.ones((2, 3, 1)), K, 10.0, "depth map must be H×W, got shape (2, 3, 1)"),
    (np.ones((2, 3)), np.eye(4), 10.0, "camera matrix K must be 3×3 and finite, got shape (4, 4)"),
    (np.ones((2, 3)), np.diag([1.0, -1.0, 1.0]), 10.0, "fx, fy > 0"),
    (np.ones((2, 3)), K, 0.0, "max depth 0.0 must be a positive number"),
    (np.ones((2, 3)), K, float("nan"), "max depth nan must be a positive number"),
])
def test_bad_input_to_depth_to_points_is_named(depth, K_, max_depth, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        depth_to_points(depth, K_, max_depth)


def test_default_camera_has_the_stated_field_of_view_and_square_pixels():
    K_default = default_intrinsics(480, 640)
    assert math.degrees(2 * math.atan(320 / K_default[0, 0])) == pytest.approx(DEFAULT_HFOV_DEGREES, abs=1e-12)
    assert DEFAULT_HFOV_DEGREES == 60.0
    np.testing.assert_allclose(K_default, [[554.2562584220407, 0, 320], [0, 554.2562584220407, 240], [0, 0, 1]])
    assert "60°" in default_intrinsics.__doc__ and "60°" in __import__("mldanet.pointcloud").pointcloud.__doc__
    with pytest.raises(ValueError, match="field of view 180° must lie strictly between"):
        default_intrinsics(10, 10, 180)
    with pytest.raises(ValueError, match="image size 10×0 must be positive"):
        default_intrinsics(0, 10)


def test_pixel_intrinsics_scale_a_normalised_K_to_the_image():
    # KITTI's normalised K at 1242×375 is the synthetic rig's K (synth/rig.py gives the numbers)
    kitti = np.array([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(pixel_intrinsics(kitti, 375, 1242), [[720.36, 0, 621], [0, 720, 187.5], [0, 0, 1]])
    np.testing.assert_array_equal(kitti[0, 0], 0.58)  # the input is not scaled in place
    with pytest.raises(ValueError, match=r"normalised K must be 3×3 or 4×4, got shape \(2, 2\)"):
        pixel_intrinsics(np.eye(2), 10, 10)


def test_the_ply_parses_with_an_independent_reader(tmp_path):
    rng = np.random.default_rng(1)
    points = rng.normal(size=(1000, 3)) * 10
    colours = rng.integers(0, 256, (1000, 3), dtype=np.uint8)
    path = write_ply(tmp_path / "cloud.ply", points, colours, ["first comment", "units: metres"])
    header, vertices = read_ply(path)
    assert header["count"] == 1000 and header["comments"] == ["first comment", "units: metres"]
    assert header["properties"] == [("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                    ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    np.testing.assert_array_equal(np.stack([vertices[a] for a in "xyz"], 1), points.astype(np.float32))
    np.testing.assert_array_equal(np.stack([vertices[c] for c in ("red", "green", "blue")], 1), colours)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cloud.ply"]  # no temporary file left


def test_an_empty_cloud_is_a_valid_ply(tmp_path):
    header, vertices = read_ply(write_ply(tmp_path / "empty.ply", np.zeros((0, 3)), np.zeros((0, 3), np.uint8)))
    assert header["count"] == 0 and len(vertices) == 0


@pytest.mark.parametrize("points, colours, comments, message", [
    (np.zeros((4, 2)), np.zeros((4, 3), np.uint8), (), r"points must be N×3, got shape \(4, 2\)"),
    (np.zeros((4, 3)), np.zeros((3, 3), np.uint8), (), r"colours must be N×3 like the points \(\(4, 3\)\), got shape \(3, 3\)"),
    (np.zeros((4, 3)), np.zeros((4, 3)), (), "colours must be uint8"),
    (np.zeros((4, 3)), np.zeros((4, 3), np.uint8), ("two\nlines",), "must be one line"),
])
def test_bad_input_to_write_ply_is_named_and_writes_nothing(tmp_path, points, colours, comments, message):
    with pytest.raises(ValueError, match=message):
        write_ply(tmp_path / "bad.ply", points, colours, comments)
    assert list(tmp_path.iterdir()) == []
