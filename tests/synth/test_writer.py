"""The KITTI raw layout on disk: determinism, split files, calibration, info file, bad arguments."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mldanet.synth import make_drive, write_synthetic_drives
from mldanet.synth.rig import BASELINE, Intrinsics
from mldanet.synth.layouts import DATE, split_lines

from .conftest import TINY
from .test_velodyne import read_calib


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_workers(tiny_dataset, tmp_path):
    again = write_synthetic_drives(tmp_path / "again", workers=2, progress=False, img_ext=".png", **TINY)
    first, second = tree(tiny_dataset.root), tree(again.root)
    assert first.keys() == second.keys()
    images = [k for k in first if k.endswith(".png") and "/data/" in k]
    dense = [k for k in first if k.endswith(".png") and "proj_depth" in k]
    assert len(images) == len(dense) == 2 * TINY["drives"] * TINY["frames"]
    assert [k for k in first if first[k] != second[k]] == []


def test_another_seed_gives_another_street(tiny_dataset, tmp_path):
    other = write_synthetic_drives(tmp_path / "other", **{**TINY, "seed": TINY["seed"] + 1, "drives": 2, "frames": 3},
                                   workers=1, progress=False, img_ext=".png")
    first, second = tree(tiny_dataset.root), tree(other.root)
    for name in second:
        if name.endswith((".png", ".bin")):
            assert first[name] != second[name], name


SPLIT_LINE = re.compile(rf"^{DATE}/{DATE}_drive_(\d{{4}})_sync (\d+) ([lr])$")


def test_split_files_reference_frames_with_neighbours_and_both_images(tiny_dataset):
    root = tiny_dataset.root
    for name, path in tiny_dataset.split_files.items():
        assert path == root / "splits" / "synth" / f"{name}_files.txt"
        lines = path.read_text().splitlines()
        assert lines
        for line in lines:
            match = SPLIT_LINE.match(line)
            assert match, f"{path}: {line!r}"
            folder = root / line.split()[0]
            frame = int(match.group(2))
            for f in (frame - 1, frame, frame + 1):
                for cam in ("image_02", "image_03"):
                    assert (folder / cam / "data" / f"{f:010d}.png").is_file(), (line, f, cam)
            assert (folder / "velodyne_points" / "data" / f"{frame:010d}.bin").is_file()
            assert (match.group(1) == "0002") == (name == "test")


def test_split_sizes_and_roles_of_the_default_dataset():
    lines = split_lines(drives=4, frames=120)
    assert len(lines["test"]) == 118 and all("_drive_0004_" in line and line.endswith(" l") for line in lines["test"])
    assert len(lines["val"]) == 3 * 6 and not any("_drive_0004_" in line for line in lines["val"])
    assert len(lines["train"]) == 3 * (118 - 6) * 2
    train_frames = {tuple(line.split()[:2]) for line in lines["train"]}
    assert not train_frames & {tuple(line.split()[:2]) for line in lines["val"]}
    assert {line.split()[2] for line in lines["train"]} == {"l", "r"}


def test_calibration_files(tiny_dataset):
    calib = tiny_dataset.root / DATE
    cam = read_calib(calib / "calib_cam_to_cam.txt")
    k = Intrinsics.for_size(tiny_dataset.width, tiny_dataset.height)
    assert list(cam["S_rect_02"]) == [tiny_dataset.width, tiny_dataset.height]
    np.testing.assert_allclose(cam["R_rect_00"].reshape(3, 3), np.eye(3))
    p2, p3 = cam["P_rect_02"].reshape(3, 4), cam["P_rect_03"].reshape(3, 4)
    np.testing.assert_allclose(p2[:, :3], [[k.fx, 0, k.cx + 1], [0, k.fy, k.cy + 1], [0, 0, 1]], rtol=1e-6)
    np.testing.assert_allclose(p2[:, 3], 0)
    np.testing.assert_allclose(p3[:, 3], [-k.fx * BASELINE, 0, 0], rtol=1e-6)
    velo = read_calib(calib / "calib_velo_to_cam.txt")
    np.testing.assert_array_equal(velo["R"].reshape(3, 3) @ [1.0, 2.0, 3.0], [-2.0, -3.0, 1.0])
    np.testing.assert_array_equal(velo["T"], 0)
    assert (calib / "calib_imu_to_velo.txt").is_file()
    stamps = (calib / tiny_dataset.drives[0] / "image_02" / "timestamps.txt").read_text().splitlines()
    assert len(stamps) == TINY["frames"] and re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}$", stamps[0])


def test_info_file_holds_the_poses_and_intrinsics(tiny_dataset):
    info = json.loads(tiny_dataset.info_path.read_text())
    assert info["seed"] == TINY["seed"] and info["width"] == TINY["width"] and info["baseline"] == BASELINE
    assert [d["role"] for d in info["drives"]] == ["train", "test"]
    k = Intrinsics.for_size(TINY["width"], TINY["height"])
    assert info["intrinsics"]["fx"] == pytest.approx(k.fx)
    for d, entry in enumerate(info["drives"]):
        np.testing.assert_allclose(entry["poses"], make_drive(TINY["seed"], d, TINY["frames"]).poses, atol=1e-11)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"drives": 1}, "--drives 1"),
        ({"frames": 2}, "--frames 2"),
        ({"width": 8}, "8×94"),
        ({"workers": 0}, "--workers 0"),
        ({"seed": -1}, "--seed -1"),
        ({"img_ext": ".bmp"}, "'.bmp'"),
    ],
)
def test_bad_arguments_name_the_value(tmp_path, override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        write_synthetic_drives(tmp_path, **{**TINY, "workers": 1, "progress": False, **override})
    assert not any(tmp_path.iterdir())


def test_rewriting_replaces_the_previous_drives(tmp_path):
    settings = {**TINY, "workers": 1, "progress": False}
    write_synthetic_drives(tmp_path, **{**settings, "drives": 3, "frames": 4})
    again = write_synthetic_drives(tmp_path, **{**settings, "drives": 2, "frames": 3})
    drives = sorted(p.name for p in (tmp_path / DATE).iterdir() if p.is_dir())
    assert drives == list(again.drives)
    frames = sorted(p.name for p in (tmp_path / DATE / drives[0] / "image_02" / "data").iterdir())
    assert frames == [f"{i:010d}.jpg" for i in range(3)]
