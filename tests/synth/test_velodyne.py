"""Velodyne scans and calibration files: projected the KITTI way, they reproduce the rendered depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mldanet.synth import Intrinsics, make_drive, render_frame, right_camera_pose
from mldanet.synth.render import VELODYNE_ELEVATIONS, VELODYNE_MAX_RANGE

from .conftest import TINY


def read_calib(path: Path) -> dict[str, np.ndarray]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        try:
            values[key] = np.array(rest.split(), dtype=np.float64)
        except ValueError:
            pass
    return values


def kitti_depth_map(calib_dir: Path, velo_path: Path, cam: int = 2) -> np.ndarray:
    """Depth map by KITTI's devkit projection (P_rect · R_rect_00 · velo_to_cam, 1-based pixels), the
    nearest point of every pixel kept (export-gt's --exact-min; its default copies monodepth2's quirk)."""
    cam2cam = read_calib(calib_dir / "calib_cam_to_cam.txt")
    velo2cam = read_calib(calib_dir / "calib_velo_to_cam.txt")
    width, height = cam2cam[f"S_rect_0{cam}"].astype(int)
    rigid = np.eye(4)
    rigid[:3, :3] = velo2cam["R"].reshape(3, 3)
    rigid[:3, 3] = velo2cam["T"]
    rect = np.eye(4)
    rect[:3, :3] = cam2cam["R_rect_00"].reshape(3, 3)
    projection = cam2cam[f"P_rect_0{cam}"].reshape(3, 4) @ rect @ rigid
    points = np.fromfile(velo_path, dtype=np.float32).reshape(-1, 4).astype(np.float64)
    points = points[points[:, 0] >= 0]
    image = np.c_[points[:, :3], np.ones(len(points))] @ projection.T
    u = np.round(image[:, 0] / image[:, 2]).astype(int) - 1
    v = np.round(image[:, 1] / image[:, 2]).astype(int) - 1
    inside = (u >= 0) & (v >= 0) & (u < width) & (v < height)
    u, v, depth = u[inside], v[inside], points[inside, 0]
    order = np.argsort(-depth)  # the nearest point of a pixel is written last
    out = np.zeros((height, width))
    out[v[order], u[order]] = depth[order]
    return out


def frame_files(summary, drive: int, frame: int) -> tuple[Path, Path]:
    folder = summary.root / summary.date / summary.drives[drive]
    return summary.root / summary.date, folder / "velodyne_points" / "data" / f"{frame:010d}.bin"


def rendered(summary, drive: int, frame: int, right: bool = False) -> np.ndarray:
    scene_drive = make_drive(TINY["seed"], drive, TINY["frames"])
    pose = scene_drive.poses[frame]
    pose = right_camera_pose(pose) if right else pose
    intrinsics = Intrinsics.for_size(summary.width, summary.height)
    return render_frame(scene_drive.scene, pose, intrinsics, summary.width, summary.height)[1]


@pytest.mark.parametrize("drive, frame", [(0, 0), (0, 3), (1, 2)])
def test_kitti_projection_recovers_the_rendered_depth(tiny_dataset, drive, frame):
    gt = kitti_depth_map(*frame_files(tiny_dataset, drive, frame))
    depth = rendered(tiny_dataset, drive, frame)
    assert gt.shape == depth.shape == (tiny_dataset.height, tiny_dataset.width)
    landed = gt > 0
    assert landed.sum() > 0.15 * gt.size
    np.testing.assert_array_less(np.abs(gt[landed] - depth[landed]), 0.01)  # inf (sky) would fail here
    # every pixel below the horizon sees something within range, so beams cover all scanned rows
    assert np.isfinite(depth[landed]).all()


def test_right_camera_calibration_points_to_camera_3(tiny_dataset):
    """P_rect_03 carries the baseline: the scan seen from camera 3 matches the right rendering."""
    gt = kitti_depth_map(*frame_files(tiny_dataset, 1, 1), cam=3)
    depth = rendered(tiny_dataset, 1, 1, right=True)
    landed = (gt > 0) & (gt < 60)
    relative = np.abs(gt[landed] - depth[landed]) / gt[landed]
    assert landed.sum() > 1000 and np.median(relative) < 0.01


def test_scan_points_lie_on_the_scene(tiny_dataset):
    """Every return (cast or snapped to a pixel) lies on a box face or the ground, within range, no sky."""
    drive = make_drive(TINY["seed"], 0, TINY["frames"])
    _, velo = frame_files(tiny_dataset, 0, 2)
    points = np.fromfile(velo, dtype=np.float32).reshape(-1, 4).astype(np.float64)
    assert 40_000 < len(points) < 130_000
    assert np.all(np.linalg.norm(points[:, :3], axis=1) <= VELODYNE_MAX_RANGE + 1e-3)
    assert np.all((points[:, 3] >= 0) & (points[:, 3] <= 1))
    elevation = np.degrees(np.arctan2(points[:, 2], np.hypot(points[:, 0], points[:, 1])))
    lowest, highest = np.degrees(VELODYNE_ELEVATIONS.min()), np.degrees(VELODYNE_ELEVATIONS.max())
    assert elevation.min() > lowest - 0.5 and elevation.max() < highest + 0.5

    pose = drive.poses[2]
    camera = np.stack([-points[:, 1], -points[:, 2], points[:, 0]], axis=1)  # velodyne -> camera axes
    world = camera @ pose[:3, :3].T + pose[:3, 3]
    sample = world[np.random.default_rng(0).choice(len(world), 4000, replace=False)]
    bounds = drive.scene.boxes.bounds
    lower, upper = bounds[:, [0, 2, 4]], bounds[:, [1, 3, 5]]
    outside = np.maximum(lower[None] - sample[:, None], sample[:, None] - upper[None]).max(axis=2)  # 0 on a face
    on_a_box = np.abs(outside).min(axis=1) < 2e-3
    on_ground = np.abs(sample[:, 2]) < 2e-3
    assert np.all(on_a_box | on_ground)
    assert on_ground.mean() > 0.2 and on_a_box.mean() > 0.2


def test_project_ground_truth_module_agrees(tiny_dataset):
    """mldanet.data.ground_truth (the export-gt path) reads the synthetic calibration the same way."""
    ground_truth = pytest.importorskip("mldanet.data.ground_truth", reason="mldanet.data.ground_truth not available")
    calib_dir, velo = frame_files(tiny_dataset, 1, 1)
    gt = ground_truth.generate_depth_map(calib_dir, velo, cam=2, exact_min=True)
    np.testing.assert_allclose(gt, kitti_depth_map(calib_dir, velo), atol=1e-5)
    depth = rendered(tiny_dataset, 1, 1)
    landed = gt > 0
    assert landed.sum() > 0.15 * gt.size
    np.testing.assert_array_less(np.abs(gt[landed] - depth[landed]), 0.01)


@pytest.mark.parametrize("right", [False, True])
def test_dense_depth_is_the_render_and_agrees_with_the_scan(tiny_dataset, right):
    """proj_depth/groundtruth holds each view's rendered depth (KITTI's uint16 × 256, sky 0), read by
    the annotated-map reader, and it matches the Velodyne scan where a point landed."""
    from mldanet.data.ground_truth import benchmark_depth_path, generate_depth_map, load_benchmark_depth

    folder = f"{tiny_dataset.date}/{tiny_dataset.drives[1]}"
    dense = load_benchmark_depth(benchmark_depth_path(tiny_dataset.root, folder, 1, "r" if right else "l"))
    depth = rendered(tiny_dataset, 1, 1, right=right)
    unknown = ~(depth < 255)  # the sky, and what uint16 × 256 cannot hold
    assert unknown.any() and np.all(dense[unknown] == 0)
    np.testing.assert_array_less(np.abs(dense[~unknown] - depth[~unknown]), 0.5 / 256 + 1e-4)
    if not right:
        calib_dir, velo = frame_files(tiny_dataset, 1, 1)
        scan = generate_depth_map(calib_dir, velo, cam=2, exact_min=True)
        landed = (scan > 0) & ~unknown
        np.testing.assert_array_less(np.abs(scan[landed] - dense[landed]), 0.01 + 0.5 / 256)
