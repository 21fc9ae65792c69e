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


# ---------------------------------------------------------------- depth maps, read as evaluate reads them
def depth_files(root: Path, sequence: str = "drive_0001") -> list[Path]:
    return sorted((root / sequence / "depth").glob("*.npy"))


def test_depth_maps_report_their_range_and_valid_fraction(data):
    report = check_folder(data, (0, -1, 1), progress=False)
    for sequence in report.sequences:
        maps = [np.load(p) for p in depth_files(data, sequence.name)]
        valid = np.concatenate([m[(m > 0.001) & (m < 80)] for m in maps])  # every pixel, no sampling
        assert sequence.depth_valid == pytest.approx(valid.size / sum(m.size for m in maps))
        # the report samples at most DEPTH_SAMPLES depths per map: its percentiles are near the exact ones
        np.testing.assert_allclose(sequence.depth_range, np.percentile(valid, [1, 99]), rtol=0.05)
    line = next(line for line in report.lines() if line.startswith("  drive_0001:"))
    low, high = report.sequences[0].depth_range
    assert f"10 depth maps ({low:.3g}-{high:.3g} m from 1st to 99th percentile, " in line and "% of pixels valid)" in line


def test_depth_maps_of_another_aspect_ratio_are_a_problem(data):
    """Issue 27, case 1: 50×50 maps of 256×64 frames; check-data counted them and said ready."""
    for path in depth_files(data):
        np.save(path, np.full((50, 50), 10.0, np.float32))
    report = check_folder(data, (0, -1, 1), progress=False)
    first = depth_files(data)[0]
    assert report.problems == [
        f"drive_0001: depth map {first} is 50×50 but its frame {data / 'drive_0001' / first.with_suffix('.jpg').name} "
        "is 256×64 (width/height 1.000 against 4.000): not the frame's picture scaled (a resized export, another "
        "camera's map, a transposed array?): write it at 256×64 (9 more depth maps of drive_0001 alike)"
    ]


def test_half_size_depth_maps_are_a_warning(data):
    for path in depth_files(data):
        np.save(path, np.load(path)[::2, ::2])
    report = check_folder(data, (0, -1, 1), progress=False)
    assert report.problems == []
    assert report.sequences[0].warnings == [
        f"depth maps such as {depth_files(data)[0]} (128×32) are their frame's size × 0.5: scored as the frame's "
        "picture scaled (fine if they are)"
    ]


def test_two_depth_files_for_one_frame_are_a_problem(data):
    """Issue 27, case 2: 24 depth maps for 12 frames, and evaluate scored the PNG."""
    import cv2

    npy = depth_files(data)[3]
    cv2.imwrite(str(npy.with_suffix(".png")), (np.load(npy) * 512).astype(np.uint16))
    report = check_folder(data, (0, -1, 1), progress=False)
    assert report.sequences[0].depth == 10
    assert report.problems == [
        f"drive_0001: two depth maps for frame {data / 'drive_0001' / npy.with_suffix('.jpg').name}: {npy} and "
        f"{npy.with_suffix('.png')}: keep the true one and move the other out of {npy.parent}"
    ]


def test_an_8_bit_or_colour_png_depth_map_is_a_problem(data):
    """Issue 27, case 3: evaluate refused it, after training; check-data said ready."""
    import cv2

    for sequence, image in (("drive_0001", np.full((64, 256), 9, np.uint8)), ("drive_0002", np.full((64, 256, 3), 9, np.uint8))):
        npy = depth_files(data, sequence)[0]
        cv2.imwrite(str(npy.with_suffix(".png")), image)
        npy.unlink()
    problems = check_folder(data, (0, -1, 1), progress=False).problems
    assert len(problems) == 2
    assert problems[0].startswith(f"drive_0001: depth map {data / 'drive_0001/depth/0000000000.png'} is an 8-bit PNG")
    assert problems[1].startswith(f"drive_0002: depth map {data / 'drive_0002/depth/0000000000.png'} has 3 channels")


def test_integer_millimetres_are_named_with_the_depth_scale_that_reads_them(data):
    """Issue 27, case 4: int64 millimetres passed check-data; evaluate found no valid pixel, without a hint."""
    clean = check_folder(data, (0, -1, 1), progress=False)
    for sequence in ("drive_0001", "drive_0002"):
        for path in depth_files(data, sequence):
            np.save(path, np.round(np.load(path) * 1000).astype(np.int64))
    problems = check_folder(data, (0, -1, 1), progress=False).problems
    assert len(problems) == 2 and all("its values are mostly beyond 80 m" in p for p in problems)
    assert problems[0].startswith(f"drive_0001: depth map {depth_files(data)[0]}:")
    assert "'depth_scale: 0.001' for millimetres" in problems[0] and problems[0].endswith("(9 more depth maps of drive_0001 alike)")
    camera = data / "camera.yaml"
    camera.write_text(camera.read_text() + "depth_scale: 0.001\n")
    scaled = check_folder(data, (0, -1, 1), progress=False)
    assert scaled.problems == []
    for a, b in zip(scaled.sequences, clean.sequences):
        assert a.depth_valid == pytest.approx(b.depth_valid, abs=1e-3)
        np.testing.assert_allclose(a.depth_range, b.depth_range, atol=1e-3)  # half a millimetre of rounding


def test_depth_maps_without_a_scored_pixel_are_a_problem(data):
    for path in depth_files(data):
        np.save(path, np.zeros((64, 256), np.float32))
    problems = check_folder(data, (0, -1, 1), progress=False).problems
    assert problems == [
        f"drive_0001: none of its 10 depth maps (such as {depth_files(data)[0]}) has a pixel between 0.001 and 80 m: "
        "nothing to score; 0 marks an unknown depth, the rest must be metres (or set depth_scale in camera.yaml)"
    ]
