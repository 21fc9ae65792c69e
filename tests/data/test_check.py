"""check_folder: what a folder dataset holds, its problems, and static frames found by their pictures."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mldanet.data.check import STATIC_THRESHOLD, check_folder, shrunk_grey, write_splits
from mldanet.data.folder import generate_split
from mldanet.synth import write_synthetic_drives

SIZE = {"drives": 2, "frames": 10, "seed": 2, "width": 256, "height": 64}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check") / "data"
    write_synthetic_drives(root, workers=1, progress=False, layout="folder", **SIZE)
    return root


@pytest.fixture
def data(rendered, tmp_path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(rendered, copy)
    return copy


def frame_change(a: Path, b: Path) -> float:
    """What check-data measures between a target and its neighbour: the mean grey-level change."""
    return float(np.abs(shrunk_grey(a) - shrunk_grey(b)).mean())


def make_static(root: Path, sequence: str, frames: range) -> None:
    """Replace ``frames`` of a sequence by copies of the first: a camera standing still."""
    folder = root / sequence
    still = folder / f"{frames[0]:010d}.jpg"
    for i in frames[1:]:
        shutil.copy(still, folder / f"{i:010d}.jpg")


def test_a_clean_folder_has_no_problems(data):
    report = check_folder(data, (0, -1, 1, "s"), progress=False)
    assert report.problems == []
    assert [(s.name, s.frames, s.size, s.right, s.depth, s.targets) for s in report.sequences] == [
        ("drive_0001", 10, (256, 64), 10, 10, 8), ("drive_0002", 10, (256, 64), 10, 10, 8),
    ]
    assert all(not s.static for s in report.sequences)  # a driving camera
    assert report.splits_generated and report.splits == {"train": 14, "val": 2, "test": 2}


def test_static_frames_are_found_by_the_picture(data):
    make_static(data, "drive_0001", range(2, 7))  # frames 2..6 identical
    assert frame_change(data / "drive_0001/0000000003.jpg", data / "drive_0001/0000000004.jpg") == 0.0
    moving = frame_change(data / "drive_0001/0000000007.jpg", data / "drive_0001/0000000008.jpg")
    assert moving > STATIC_THRESHOLD
    report = check_folder(data, (0, -1, 1), progress=False)
    # a target is static when it and its next neighbour are the same picture: 2..5
    assert report.sequences[0].static == [f"{i:010d}.jpg" for i in range(2, 6)]
    assert any("4 target frames are static" in line for line in report.lines())
    written = write_splits(report, (0, -1, 1), 1, 10, overwrite=False)
    lines = {p.name: p.read_text().split("\n")[:-1] for p in written}
    kept = {line for part in ("train_files.txt", "val_files.txt") for line in lines[part]}
    assert not {f"drive_0001 {i:010d}.jpg" for i in range(2, 6)} & kept and len(kept) == 16 - 4
    assert check_folder(data, (0, -1, 1), progress=False).splits_generated is False
    with pytest.raises(FileExistsError, match="train_files.txt exists: --overwrite"):
        write_splits(report, (0, -1, 1), 1, 10, overwrite=False)


def test_problems_name_their_files(data):
    (data / "camera.yaml").unlink()
    shutil.rmtree(data / "drive_0002" / "right")
    (data / "drive_0002" / "camera.yaml").write_text("K: [[100, 0, 128], [0, 100, 32], [0, 0, 1]]\nimage_size: [256, 64]\n")
    (data / "drive_0002" / "0000000004.jpg").write_bytes(b"not a jpeg")
    report = check_folder(data, (0, -1, 1, "s"), progress=False)
    problems = report.problems
    assert any(p.startswith("drive_0001: no camera for sequence") for p in problems)
    assert any("drive_0002: no right images" in p for p in problems)
    assert any("drive_0002" in p and "camera.yaml gives no baseline" in p for p in problems)
    assert any("0000000004.jpg" in p and "corrupt or not an image" in p for p in problems)


def test_an_empty_folder_is_one_problem(tmp_path):
    report = check_folder(tmp_path, progress=False)
    assert report.problems == [f"no sequence folder with frames (.jpg, .jpeg, .png) under {tmp_path}"]


def test_split_generation_matches_the_report(data):
    report = check_folder(data, (0, -1, 1), 2, val_every=3, progress=False)
    generated = generate_split(data, (0, -1, 1), 2, 3)
    assert report.splits == {part: len(lines) for part, lines in generated.items()}
    assert [s.targets for s in report.sequences] == [6, 6]  # frames 2..7 have neighbours ±2
