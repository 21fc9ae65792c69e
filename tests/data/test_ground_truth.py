"""Velodyne ground truth: the real KITTI frame against monodepth2's rule, a closed-form scan, export-gt, and
the npz loader (which never runs a pickle's code)."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.lib import format as npy_format

from mldanet import cli
from mldanet.data.ground_truth import (
    generate_depth_map,
    load_gt_depths,
    load_velodyne_points,
    read_gt_depths,
    save_gt_depths,
)

from .kitti_layout import FOLDER, make_kitti_drive, write_lines


def run_command(argv: list[str]) -> int:
    """Run a command without cli.main's error printing, so the test sees the exception."""
    args = cli.build_parser(argv[0]).parse_args(argv)
    return args._run(args)


REAL_SCAN = "2011_10_03/2011_10_03_drive_0000_sync/velodyne_points/data/0000000001.bin"


def test_real_frame_matches_independent_figures(real_kitti_sample):
    depth = generate_depth_map(real_kitti_sample / "2011_10_03", real_kitti_sample / REAL_SCAN)
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


def test_eigen_benchmark_needs_benchmark_dir(tmp_path, capsys):
    splits_dir = tmp_path  # refused before the split is read
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


# ----------------------------------------------------------------- monodepth2's duplicate rule


def read_calibration(path) -> dict[str, np.ndarray]:
    """``key: numbers`` lines of a KITTI calibration file (the non-numeric ones left out)."""
    values = {}
    for line in path.read_text().splitlines():
        key, _, text = line.partition(":")
        try:
            values[key] = np.array([float(token) for token in text.split()])
        except ValueError:
            continue
    return values


def reference_points(calib, scan_path):
    """(row, col, depth, camera z) of every scan point in front of the scanner that lands in the image,
    in scan order: P_rect_02 · R_rect_00 · [R|T], pixels rounded and shifted by one, depth = x."""
    cam, velo = read_calibration(calib / "calib_cam_to_cam.txt"), read_calibration(calib / "calib_velo_to_cam.txt")
    rect = np.eye(4)
    rect[:3, :3] = cam["R_rect_00"].reshape(3, 3)
    rigid = np.eye(4)
    rigid[:3, :3], rigid[:3, 3] = velo["R"].reshape(3, 3), velo["T"]
    projection = cam["P_rect_02"].reshape(3, 4) @ rect @ rigid
    width, height = (int(v) for v in cam["S_rect_02"])
    points = []
    for x, y, z, _ in np.fromfile(scan_path, dtype=np.float32).reshape(-1, 4).astype(np.float64):
        if x < 0:
            continue
        u, v, w = projection @ np.array([x, y, z, 1.0])
        if w == 0:
            continue
        col, row = round(u / w) - 1, round(v / w) - 1  # Python's round is half-to-even, as np.round
        if 0 <= col < width and 0 <= row < height:
            points.append((row, col, x, w))
    return points, (height, width)


def test_default_map_is_monodepth2s_rule_bit_for_bit(real_kitti_sample):
    points, (height, width) = reference_points(real_kitti_sample / "2011_10_03", real_kitti_sample / REAL_SCAN)
    expected = np.zeros((height, width))
    for row, col, depth, _ in points:  # each pixel first holds its last point
        expected[row, col] = depth
    groups: dict[int, list[int]] = {}
    for i, (row, col, _, _) in enumerate(points):  # monodepth2's sub2ind: row·(W−1) + col − 1
        groups.setdefault(row * (width - 1) + col - 1, []).append(i)
    for members in groups.values():
        if len(members) > 1:  # the group's minimum goes to its first point's pixel
            row, col = points[members[0]][:2]
            expected[row, col] = min(points[m][2] for m in members)

    ours = generate_depth_map(real_kitti_sample / "2011_10_03", real_kitti_sample / REAL_SCAN)
    np.testing.assert_array_equal(ours, expected.astype(np.float32))
    # the quirk is exercised on this frame: two column-0 pixels take a point of the row above's end
    assert ours[220, 0] == np.float32(8.829) and ours[237, 0] == np.float32(8.817)


def test_exact_min_is_the_per_pixel_minimum(real_kitti_sample):
    points, shape = reference_points(real_kitti_sample / "2011_10_03", real_kitti_sample / REAL_SCAN)
    nearest: dict[tuple[int, int], float] = {}
    for row, col, depth, camera_z in points:
        if camera_z > 0:
            nearest[row, col] = min(depth, nearest.get((row, col), np.inf))
    expected = np.zeros(shape)
    for (row, col), depth in nearest.items():
        expected[row, col] = depth

    exact = generate_depth_map(real_kitti_sample / "2011_10_03", real_kitti_sample / REAL_SCAN, exact_min=True)
    np.testing.assert_array_equal(exact, expected.astype(np.float32))
    default = generate_depth_map(real_kitti_sample / "2011_10_03", real_kitti_sample / REAL_SCAN)
    differ = np.argwhere(exact != default)
    assert differ.tolist() == [[220, 0], [237, 0]]
    assert exact[220, 0] == np.float32(10.92) and exact[237, 0] == np.float32(10.982)


def test_export_gt_exact_min_flag_and_stored_lines(tmp_path, kitti_sample):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "test_files.txt", [f"{FOLDER} 1 l"])
    args = ["export-gt", "--data-path", str(root), "--split-file", str(split)]
    assert cli.main([*args, "--out", str(tmp_path / "default.npz")]) == 0
    assert cli.main([*args, "--out", str(tmp_path / "exact.npz"), "--exact-min"]) == 0
    scan = kitti_sample / REAL_SCAN
    default, exact = read_gt_depths(tmp_path / "default.npz"), read_gt_depths(tmp_path / "exact.npz")
    np.testing.assert_array_equal(default.maps[0], generate_depth_map(kitti_sample / "2011_10_03", scan))
    np.testing.assert_array_equal(exact.maps[0], generate_depth_map(kitti_sample / "2011_10_03", scan, exact_min=True))
    assert default.lines == exact.lines == [f"{FOLDER} 1 l"]
    with np.load(tmp_path / "default.npz", allow_pickle=False) as archive:  # the lines need no pickle
        assert archive["lines"].tolist() == [f"{FOLDER} 1 l"]


# ------------------------------------------------------------ reading gt_depths.npz safely


class WritesAMarker:
    """Unpickling this would run a shell command creating ``marker``."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def object_array(items) -> np.ndarray:
    data = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        data[i] = item
    return data


def test_a_pickle_that_runs_code_is_refused_unrun(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "gt_depths.npz"
    np.savez_compressed(evil, data=object_array([np.ones((3, 4), np.float32), WritesAMarker(marker)]))
    with pytest.raises(ValueError) as error:
        load_gt_depths(evil)
    assert not marker.exists()
    assert str(error.value).startswith(f"ground-truth file {evil} holds a pickle that would call posix.system")
    # through the command: one line, exit 2, nothing run
    disps = tmp_path / "disps.npy"
    np.save(disps, np.ones((2, 3, 4), np.float32))
    assert cli.main(["evaluate", "--pred-disps", str(disps), "--gt", str(evil), "--scaling", "stereo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(evil) in err and "posix.system" in err and not marker.exists()


def test_other_globals_and_objects_are_refused(tmp_path):
    np.savez(tmp_path / "eval.npz", data=object_array([np.ones((2, 2)), eval]))
    with pytest.raises(ValueError, match=r"would call builtins\.eval"):
        load_gt_depths(tmp_path / "eval.npz")
    np.savez(tmp_path / "dicts.npz", data=object_array([np.ones((2, 2)), {"a": 1}]))
    with pytest.raises(ValueError, match=r"dicts\.npz: map 1 is a dict, not an H×W array of depths"):
        load_gt_depths(tmp_path / "dicts.npz")
    np.savez(tmp_path / "other_key.npz", data=np.ones((1, 2, 2)), extra=object_array([1, 2]))
    with pytest.raises(ValueError, match=r"other_key\.npz\[extra\] holds Python objects"):
        load_gt_depths(tmp_path / "other_key.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"ground-truth file .*text\.npz is not a NumPy \.npz archive"):
        load_gt_depths(tmp_path / "text.npz")
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"ground-truth file .*folder\.npz is a folder, not a file"):
        load_gt_depths(tmp_path / "folder.npz")


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_monodepth2_object_arrays_round_trip_exactly(tmp_path, save):
    rng = np.random.default_rng(0)
    maps = [rng.uniform(0, 80, (375, 1242)).astype(np.float32), rng.uniform(0, 80, (370, 1224)).astype(np.float32)]
    save(tmp_path / "gt.npz", data=object_array(maps))
    loaded = read_gt_depths(tmp_path / "gt.npz")
    assert loaded.lines is None and len(loaded.maps) == 2
    for ours, theirs in zip(loaded.maps, maps, strict=True):
        assert ours.dtype == np.float32 and np.array_equal(ours, theirs)


def legacy_npz(path, data: np.ndarray, protocol: int, python2: bool) -> None:
    """``data`` as older writers left it: numpy 1.x names (numpy.core), pickle ``protocol``, and with
    ``python2`` every str and bytes as a Python 2 byte string (what Python 2's numpy wrote)."""
    import codecs

    names = {
        getattr(np, "_core", None).multiarray._reconstruct: ("numpy.core.multiarray", "_reconstruct"),
        getattr(np, "_core", None).multiarray.scalar: ("numpy.core.multiarray", "scalar"),
        np.ndarray: ("numpy", "ndarray"),
        np.dtype: ("numpy", "dtype"),
        codecs.encode: ("_codecs", "encode"),
    }

    class LegacyPickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_global(self, obj, name=None):
            module, name = names[obj]
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
            self.memoize(obj)

        def save_bytes(self, obj):
            if not python2:
                return pickle._Pickler.save_bytes(self, obj)
            short = len(obj) < 256
            self.write((pickle.SHORT_BINSTRING + bytes([len(obj)])) if short else pickle.BINSTRING + struct.pack("<i", len(obj)))
            self.write(obj)

        def save_str(self, obj):
            if not python2:
                return pickle._Pickler.save_str(self, obj)
            self.save_bytes(obj.encode("latin1"))

        dispatch[bytes] = save_bytes
        dispatch[str] = save_str

    npy = io.BytesIO()
    npy_format.write_array_header_1_0(npy, npy_format.header_data_from_array_1_0(data))
    LegacyPickler(npy, protocol=protocol).dump(data)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data.npy", npy.getvalue())


@pytest.mark.skipif(not hasattr(np, "_core"), reason="builds numpy 1.x pickles from numpy 2's functions")
@pytest.mark.parametrize(
    "protocol, python2", [(2, True), (0, True), (2, False), (3, False)], ids=["py2-binary", "py2-text", "numpy<1.17", "numpy1.x"]
)
def test_older_writers_pickles_load(tmp_path, protocol, python2):
    maps = [np.arange(12, dtype=np.float32).reshape(3, 4) / 7, np.linspace(0, 80, 600).reshape(20, 30)]
    legacy_npz(tmp_path / "gt.npz", object_array(maps), protocol, python2)
    trusted = np.load(tmp_path / "gt.npz", allow_pickle=True, encoding="latin1")["data"]  # the reference reader
    loaded = load_gt_depths(tmp_path / "gt.npz")
    for ours, theirs in zip(loaded, trusted, strict=True):
        assert np.array_equal(ours, theirs.astype(np.float32))


def stacked_object_array(maps: np.ndarray, python_floats: bool) -> np.ndarray:
    """N×H×W object array: NumPy scalars (a patched export_gt_depth.py's ``np.array(maps, dtype=object)``
    of float32 maps of one size) or Python floats (of ``.tolist()``)."""
    if python_floats:
        return np.array(maps.tolist(), dtype=object)
    out = np.empty(maps.shape, dtype=object)
    for index in np.ndindex(maps.shape):
        out[index] = maps[index]
    return out


@pytest.mark.parametrize("python_floats", [False, True], ids=["numpy-scalars", "python-floats"])
@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_stacked_object_arrays_of_numbers_load(tmp_path, save, python_floats):
    maps = np.random.default_rng(2).uniform(0, 80, (3, 4, 5)).astype(np.float32)
    data = stacked_object_array(maps, python_floats)
    assert data.dtype == object and data.shape == (3, 4, 5)
    save(tmp_path / "gt.npz", data=data)
    trusted = np.load(tmp_path / "gt.npz", allow_pickle=True)["data"]  # the reference reader
    loaded = load_gt_depths(tmp_path / "gt.npz")
    assert len(loaded) == 3
    for ours, theirs, original in zip(loaded, trusted, maps, strict=True):
        assert ours.dtype == np.float32 and np.array_equal(ours, theirs.astype(np.float32))
        assert np.array_equal(ours, original)


@pytest.mark.skipif(not hasattr(np, "_core"), reason="builds numpy 1.x pickles from numpy 2's functions")
@pytest.mark.parametrize("protocol", [2, 3])
def test_stacked_object_arrays_from_numpy_1_load(tmp_path, protocol):
    maps = np.linspace(0, 80, 24, dtype=np.float32).reshape(2, 3, 4)
    legacy_npz(tmp_path / "gt.npz", stacked_object_array(maps, python_floats=False), protocol, python2=False)
    assert b"numpy.core.multiarray\nscalar" in zipfile.ZipFile(tmp_path / "gt.npz").read("data.npy")
    loaded = load_gt_depths(tmp_path / "gt.npz")
    assert all(np.array_equal(ours, original) for ours, original in zip(loaded, maps, strict=True))


def test_object_arrays_of_anything_but_numbers_are_refused_naming_the_map(tmp_path):
    data = stacked_object_array(np.ones((2, 2, 2), np.float32), python_floats=True)
    data[1, 0, 1] = "80"
    np.savez(tmp_path / "text.npz", data=data)
    with pytest.raises(ValueError, match=r"text\.npz: map 1 holds a str, not a number"):
        load_gt_depths(tmp_path / "text.npz")
    data[1, 0, 1] = eval
    np.savez(tmp_path / "eval3d.npz", data=data)
    with pytest.raises(ValueError, match=r"would call builtins\.eval"):
        load_gt_depths(tmp_path / "eval3d.npz")
    np.savez(tmp_path / "two_d.npz", data=np.array([[1.0, 2.0]], dtype=object))
    with pytest.raises(ValueError, match=r"two_d\.npz: 'data' is a 2-D object array, neither N depth maps nor N×H×W"):
        load_gt_depths(tmp_path / "two_d.npz")


def test_plain_arrays_are_read_without_unpickling(tmp_path, monkeypatch):
    import mldanet.data.npy as npy

    def no_pickles(*args, **kwargs):
        raise AssertionError("a numeric array was unpickled")

    monkeypatch.setattr(npy, "ArrayUnpickler", no_pickles)
    monkeypatch.setattr(pickle, "load", no_pickles)
    maps = np.random.default_rng(1).uniform(0, 80, (3, 5, 7))
    np.savez_compressed(tmp_path / "stacked.npz", data=maps)
    loaded = load_gt_depths(tmp_path / "stacked.npz")
    assert len(loaded) == 3 and all(np.array_equal(m, d.astype(np.float32)) for m, d in zip(loaded, maps))


# -------------------------------------------------------------- export-gt's path checks


def test_export_gt_path_checks(tmp_path, kitti_sample, capsys, monkeypatch):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "test_files.txt", [f"{FOLDER} 1 l"])
    a_file = write_lines(tmp_path / "a_file.txt", ["x"])

    def export(*extra, data=root, out=tmp_path / "gt.npz"):
        code = cli.main(["export-gt", "--data-path", str(data), "--split-file", str(split), "--out", str(out), *extra])
        return code, capsys.readouterr().err.strip()

    assert export(data=a_file) == (2, f"mldanet export-gt: error: data path {a_file} is a file, not a folder")
    assert export("--benchmark-dir", str(a_file)) == (
        2, f"mldanet export-gt: error: benchmark directory {a_file} is a file, not a folder"
    )
    assert export(out=tmp_path) == (2, f"mldanet export-gt: error: --out file {tmp_path} is a folder, not a file")
    assert export(out=a_file / "gt.npz") == (
        2, f"mldanet export-gt: error: cannot create --out file {a_file / 'gt.npz'}: {a_file} is a file, not a folder"
    )
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != read_only and real_access(path, mode))
    assert export(out=read_only / "gt.npz") == (
        2, f"mldanet export-gt: error: cannot write --out file {read_only / 'gt.npz'}: {read_only} is not writable"
    )
    assert not (read_only / "gt.npz").exists()


def test_gt_file_shape_errors_name_the_file(tmp_path):
    maps = [np.ones((3, 4), np.float32)]
    with pytest.raises(ValueError, match=r"1 ground-truth maps but 2 split lines for .*gt\.npz: give one line per map"):
        save_gt_depths(maps, tmp_path / "gt.npz", ["a/b 1 l", "a/b 2 l"])
    np.savez(tmp_path / "lines.npz", data=np.ones((2, 3, 4)), lines=np.array(["a/b 1 l"]))
    with pytest.raises(ValueError, match=r"lines\.npz: 'lines' is not one split line per map \(\(1,\) <U7 for 2 maps\)"):
        read_gt_depths(tmp_path / "lines.npz")
    np.savez(tmp_path / "flat.npz", data=np.ones(5))
    with pytest.raises(ValueError, match=r"flat\.npz: 'data' is a 1-D float64 array, not N H×W depth maps"):
        read_gt_depths(tmp_path / "flat.npz")
    np.savez(tmp_path / "volume.npz", data=object_array([np.ones((2, 3, 4))]))
    with pytest.raises(ValueError, match=r"volume\.npz: map 0 is a 3-D float64 array, not an H×W array of depths"):
        read_gt_depths(tmp_path / "volume.npz")
