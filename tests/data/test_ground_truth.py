"""Velodyne ground truth: the real KITTI frame, a closed-form scan, export-gt, and the npz loader."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mldanet import cli
from mldanet.data.ground_truth import generate_depth_map, load_gt_depths, load_velodyne_points, save_gt_depths

from .kitti_layout import FOLDER, make_kitti_drive, write_lines


def run_command(argv: list[str]) -> int:
    """Run a command without cli.main's error printing, so the test sees the exception."""
    args = cli.build_parser(argv[0]).parse_args(argv)
    return args._run(args)


REAL_SCAN = "2011_10_03/2011_10_03_drive_0000_sync/velodyne_points/data/0000000001.bin"


def test_real_frame_matches_independent_figures(kitti_sample):
    depth = generate_depth_map(kitti_sample / "2011_10_03", kitti_sample / REAL_SCAN)
    assert depth.shape == (376, 1241) and depth.dtype == np.float32
    valid = depth[depth > 0]
    assert valid.size == 19100
    assert valid.min() == pytest.approx(4.62, abs=0.005)
    assert valid.max() == pytest.approx(79.74, abs=0.005)
    assert np.median(valid) == pytest.approx(13.29, abs=0.005)


def write_simple_calibration(folder, f=100.0, cx=20.0, cy=10.0):
    """Rectified camera 2 = Velodyne axes turned into camera axes (x right, y down, z forward), no offsets."""
    folder.mkdir(parents=True, exist_ok=True)
    identity = " ".join(map(str, np.eye(3).ravel()))
    projection = " ".join(map(str, [f, 0, cx, 0, 0, f, cy, 0, 0, 0, 1, 0]))
    (folder / "calib_cam_to_cam.txt").write_text(
        f"calib_time: 09-Jan-2012 14:00:15\nS_rect_02: 40 20\nR_rect_00: {identity}\nP_rect_02: {projection}\n"
    )
    velo_rotation = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], dtype=float)
    (folder / "calib_velo_to_cam.txt").write_text(f"R: {' '.join(map(str, velo_rotation.ravel()))}\nT: 0 0 0\n")


def test_closed_form_projection_nearest_point_and_dropped_points(tmp_path):
    write_simple_calibration(tmp_path)
    # (x forward, y left, z up): pixel u = cx + f·(−y)/x, v = cy + f·(−z)/x, minus monodepth2's 1-pixel offset
    points = np.array(
        [
            [10.0, 0.0, 0.0, 1],  # → (20, 10) → stored at row 9, column 19
            [5.0, -0.5, -0.2, 1],  # → (30, 14) → (13, 29)
            [8.0, -0.8, -0.32, 1],  # same pixel, farther: the nearer 5 m wins
            [-3.0, 0.0, 0.0, 1],  # behind: dropped
            [10.0, 10.0, 0.0, 1],  # left of the image: dropped
        ],
        dtype=np.float32,
    )
    scan = tmp_path / "scan.bin"
    points.tofile(scan)
    depth = generate_depth_map(tmp_path, scan)
    assert depth.shape == (20, 40)
    assert depth[9, 19] == 10.0 and depth[13, 29] == 5.0
    assert np.count_nonzero(depth) == 2


def test_missing_and_truncated_velodyne_name_the_file(tmp_path, kitti_sample):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent.bin")):
        generate_depth_map(kitti_sample / "2011_10_03", tmp_path / "absent.bin")
    (tmp_path / "short.bin").write_bytes(b"\0" * 20)
    with pytest.raises(ValueError, match="short.bin"):
        load_velodyne_points(tmp_path / "short.bin")
    with pytest.raises(FileNotFoundError, match="calib_cam_to_cam.txt"):
        generate_depth_map(tmp_path, kitti_sample / REAL_SCAN)


def test_export_gt_command_writes_monodepth2_npz(tmp_path, kitti_sample):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "test_files.txt", [f"{FOLDER} 1 l", f"{FOLDER} 0000000001 l"])
    out = tmp_path / "gt" / "gt_depths.npz"
    assert cli.main(["export-gt", "--data-path", str(root), "--split-file", str(split), "--out", str(out)]) == 0
    expected = generate_depth_map(kitti_sample / "2011_10_03", kitti_sample / REAL_SCAN)
    # read as monodepth2's evaluate_depth.py does
    data = np.load(out, fix_imports=True, encoding="latin1", allow_pickle=True)["data"]
    assert len(data) == 2 and data[0].dtype == np.float32
    np.testing.assert_array_equal(data[1], expected)
    maps = load_gt_depths(out)
    assert len(maps) == 2 and all(np.array_equal(m, expected) for m in maps)
    assert not list(out.parent.glob(".*tmp"))


def test_export_gt_reads_benchmark_annotations(tmp_path, kitti_sample):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    annotated = np.zeros((376, 1241), dtype=np.uint16)
    annotated[100, 200] = 256 * 12 + 128  # 12.5 m
    target = tmp_path / "bench/val/2011_10_03_drive_0000_sync/proj_depth/groundtruth/image_02"
    target.mkdir(parents=True)
    cv2.imwrite(str(target / "0000000001.png"), annotated)
    split = write_lines(tmp_path / "test_files.txt", [f"{FOLDER} 1 l"])
    out = tmp_path / "gt.npz"
    args = ["export-gt", "--data-path", str(root), "--split-file", str(split), "--out", str(out)]
    assert cli.main(args + ["--benchmark-dir", str(tmp_path / "bench")]) == 0
    (depth,) = load_gt_depths(out)
    assert depth[100, 200] == 12.5 and np.count_nonzero(depth) == 1

    missing = write_lines(tmp_path / "missing.txt", [f"{FOLDER} 2 l"])
    with pytest.raises(FileNotFoundError, match="annotated depth not found: .*0000000002.png"):
        run_command(
            args[:3] + ["--split-file", str(missing), "--out", str(out), "--benchmark-dir", str(tmp_path / "bench")]
        )


def test_eigen_benchmark_needs_benchmark_dir(tmp_path, splits_dir, capsys):
    code = cli.main(
        [
            "export-gt",
            "--data-path",
            str(tmp_path),
            "--split",
            "eigen_benchmark",
            "--splits-dir",
            str(splits_dir),
            "--out",
            str(tmp_path / "x.npz"),
        ]
    )
    assert code == 2 and "--benchmark-dir" in capsys.readouterr().err


def test_export_gt_missing_scan_names_it(tmp_path, kitti_sample):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1, 2))
    split = write_lines(tmp_path / "test_files.txt", [f"{FOLDER} 2 l"])
    with pytest.raises(FileNotFoundError, match=r"velodyne_points/data/0000000002.bin"):
        run_command(
            ["export-gt", "--data-path", str(root), "--split-file", str(split), "--out", str(tmp_path / "gt.npz")]
        )


def test_gt_loader_errors_and_plain_arrays(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_gt_depths(tmp_path / "absent.npz")
    np.savez(tmp_path / "wrong.npz", depths=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"wrong.npz has no 'data' array \(found: depths\)"):
        load_gt_depths(tmp_path / "wrong.npz")
    np.savez(tmp_path / "stacked.npz", data=np.ones((2, 3, 4), dtype=np.float64))
    maps = load_gt_depths(tmp_path / "stacked.npz")
    assert len(maps) == 2 and maps[0].shape == (3, 4) and maps[0].dtype == np.float32
    maps = [np.zeros((3, 4), np.float32), np.ones((5, 6), np.float32)]
    assert [m.shape for m in load_gt_depths(save_gt_depths(maps, tmp_path / "mixed.npz"))] == [(3, 4), (5, 6)]
