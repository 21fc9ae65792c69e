"""Fused-SGM depth hints: the real Middlebury Motorcycle pair, the error and warp against float64
references, and ``mldanet hints`` end to end on a KITTI-layout tree (2 worker processes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mldanet import cli
from mldanet.data import depth_hints as hints
from mldanet.data.kitti_raw import KittiRawDataset
from mldanet.config import DataConfig
from mldanet.data.base import compute_hints
from mldanet.data.depth_hints import HintSettings
from mldanet.data.kitti import hint_path
from mldanet.sgm import (
    StereoWarpError,
    disparity_to_depth,
    fused_sgm_depth,
    select_disparity,
    sgbm_disparities,
    warp_by_disparity,
)

from .data.kitti_layout import FOLDER, SHIFT, make_kitti_drive, write_lines


def coverage_and_bad_rate(disparity: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Fraction of pixels with a disparity, and of those also in the ground truth, |d − gt| > 2 px."""
    both = (disparity > 0) & np.isfinite(gt)
    return float((disparity > 0).mean()), float((np.abs(disparity[both] - gt[both]) > 2).mean())


@pytest.fixture(scope="module")
def motorcycle():
    """Middlebury 2014 Motorcycle as scikit-image ships it: 741×500 (a quarter of full size),
    ground-truth disparity ≤ 60 px, inf where unknown."""
    from skimage import data

    left, right, gt = data.stereo_motorcycle()
    assert left.shape == (500, 741, 3) and np.nanmax(gt[np.isfinite(gt)]) < 64
    return left, right, gt


def test_motorcycle_fused_hints_beat_every_single_matcher(motorcycle):
    left, right, gt = motorcycle
    singles = [coverage_and_bad_rate(d, gt) for d in sgbm_disparities(left, right)]
    assert len(singles) == 12
    fx, baseline = 1000.0, 0.1
    depth = fused_sgm_depth(left, right, fx, baseline)
    assert depth.dtype == np.float32 and depth.shape == gt.shape
    fused = np.where(depth > 0, fx * baseline / np.maximum(depth, 1e-12), 0)
    coverage, bad = coverage_and_bad_rate(fused, gt)
    assert coverage >= max(c for c, _ in singles)
    assert coverage >= 0.88 and bad <= 0.09  # reference recipe: 88.9 % and 7.6 %


def test_right_base_is_the_mirror_image_problem(motorcycle):
    left, right, _ = (a[100:260, 150:550] for a in motorcycle)
    options = dict(block_sizes=(1, 3), num_disparities=(64, 96))
    as_right = fused_sgm_depth(right, left, 500.0, 0.1, base_is_right=True, **options)
    mirrored = fused_sgm_depth(right[:, ::-1].copy(), left[:, ::-1].copy(), 500.0, 0.1, **options)[:, ::-1]
    assert (as_right > 0).mean() > 0.7
    # equal up to ties the interpolation rounding breaks differently
    assert np.mean(as_right == mirrored) > 0.995


def test_warp_direction_on_a_shifted_pair():
    rng = np.random.default_rng(0)
    left = rng.uniform(0, 1, (20, 60, 3)).astype(np.float32)
    right = np.roll(left, -5, axis=1)  # right[x] = left[x + 5]: disparity 5
    d = np.full((20, 60), 5.0, dtype=np.float32)
    np.testing.assert_allclose(warp_by_disparity(right, d)[:, 5:], left[:, 5:], atol=1e-6)
    np.testing.assert_allclose(warp_by_disparity(left, d, base_is_right=True)[:, :-5], right[:, :-5], atol=1e-6)


def reference_error(base, lookup, disparity, base_is_right):
    """float64 loops: bilinear warp with edge clamp, 3×3 SSIM with reflect-101 padding, 0.85/0.15 mix."""
    base, lookup = base.astype(np.float64), lookup.astype(np.float64)
    height, width = disparity.shape
    warped = np.empty_like(base)
    for y in range(height):
        for x in range(width):
            u = min(max(x + (disparity[y, x] if base_is_right else -disparity[y, x]), 0), width - 1)
            x0 = int(np.floor(u))
            x1, f = min(x0 + 1, width - 1), u - x0
            warped[y, x] = (1 - f) * lookup[y, x0] + f * lookup[y, x1]
    pad = lambda a: np.pad(a, ((1, 1), (1, 1), (0, 0)), mode="reflect")  # noqa: E731
    a, b = pad(base), pad(warped)
    error = np.empty((height, width))
    for y in range(height):
        for x in range(width):
            wa, wb = a[y : y + 3, x : x + 3], b[y : y + 3, x : x + 3]
            ma, mb = wa.mean((0, 1)), wb.mean((0, 1))
            va, vb = wa.var((0, 1)), wb.var((0, 1))
            cov = ((wa - ma) * (wb - mb)).mean((0, 1))
            ssim = (2 * ma * mb + 1e-4) * (2 * cov + 9e-4) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4))
            dssim = np.clip((1 - ssim) / 2, 0, 1)
            error[y, x] = np.mean(0.85 * dssim + 0.15 * np.abs(base[y, x] - warped[y, x]))
    return error


@pytest.mark.parametrize("base_is_right", [False, True])
def test_warp_error_matches_float64_reference_whole_and_tiled(base_is_right):
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, (13, 21, 3)).astype(np.float32)
    lookup = rng.uniform(0, 1, (13, 21, 3)).astype(np.float32)
    disparity = rng.uniform(-2, 9, (13, 21)).astype(np.float32)
    expected = reference_error(base, lookup, disparity, base_is_right)
    error_of = StereoWarpError(base, lookup, base_is_right, tile=4)
    np.testing.assert_allclose(error_of(disparity), expected, atol=2e-5)
    rows, cols = np.nonzero(rng.random(error_of.grid) < 0.6)
    tiled = error_of.untile(error_of.tiles(disparity, rows, cols), rows, cols)
    inside = np.isfinite(tiled)
    assert inside.any() and not inside.all()
    np.testing.assert_allclose(tiled[inside], expected[inside], atol=2e-5)


def test_selection_is_the_per_pixel_argmin_over_valid_candidates(motorcycle):
    left, right, _ = (a[200:330, 100:500] for a in motorcycle)
    candidates = sgbm_disparities(left, right, block_sizes=(1, 2, 3), num_disparities=(64, 96))
    error_of = StereoWarpError(left.astype(np.float32) / 255, right.astype(np.float32) / 255)
    errors = np.stack([np.where(d > 0, error_of(d), np.inf) for d in candidates])
    stacked = np.stack(candidates)
    expected = np.take_along_axis(stacked, errors.argmin(0)[None], 0)[0]
    expected[np.isinf(errors).all(0)] = 0
    fused = select_disparity(left, right, candidates)
    np.testing.assert_array_equal(fused > 0, (stacked > 0).any(0))  # the union of the candidates
    assert np.mean(fused == expected) > 0.999  # ties aside, the brute-force argmin


def test_depth_conversion_and_bad_input():
    np.testing.assert_array_equal(disparity_to_depth(np.array([[4.0, 0.0, -1.0]]), 100.0, 0.1), [[2.5, 0.0, 0.0]])
    image = np.zeros((40, 100, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        fused_sgm_depth(image.astype(np.float32), image, 1.0, 0.1)
    with pytest.raises(ValueError, match="sizes differ"):
        fused_sgm_depth(image, image[:, :90], 1.0, 0.1)
    with pytest.raises(ValueError, match="numDisparities 40 must be a positive multiple of 16"):
        fused_sgm_depth(image, image, 1.0, 0.1, num_disparities=(40,))
    with pytest.raises(ValueError, match="below the image width 100"):
        fused_sgm_depth(image, image, 1.0, 0.1, num_disparities=(112,))


HINT_ARGS = ["--height", "96", "--width", "320", "--block-sizes", "1", "3", "--num-disparities", "16", "32"]


def run_hints(argv):
    args = cli.build_parser("hints").parse_args(["hints", *argv])
    return args._run(args)


def test_hints_command_end_to_end_with_two_workers(kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "lines.txt", [f"{FOLDER} 1 l", f"{FOLDER} 1 r", f"{FOLDER} 1 l"])
    out = tmp_path / "hints"
    argv = ["--data-path", str(root), "--split-file", str(split), "--out", str(out), *HINT_ARGS]
    assert run_hints([*argv, "--workers", "2"]) == 0
    assert "2 hints computed, 0 already present" in capsys.readouterr().out
    true_depth = 0.58 * 320 * 0.1 / (SHIFT * 320 / 1241)  # training units at any resolution
    saved = {}
    for side in ("l", "r"):
        path = hint_path(out, FOLDER, 1, side)
        saved[side] = np.load(path)
        assert saved[side].shape == (96, 320) and saved[side].dtype == np.float32
        valid = saved[side][saved[side] > 0]
        assert valid.size > 0.5 * saved[side].size
        assert np.median(valid) == pytest.approx(true_depth, rel=0.05)
    stamp = hint_path(out, FOLDER, 1, "l").stat().st_mtime_ns

    summary = compute_hints(
        DataConfig(data_path=str(root)), split.read_text().split("\n")[:3], out, HintSettings(96, 320, (1, 3), (16, 32)),
        workers=2, progress=False,
    )
    assert (summary.pairs_done, summary.pairs_skipped) == (0, 2)
    assert hint_path(out, FOLDER, 1, "l").stat().st_mtime_ns == stamp

    assert run_hints([*argv, "--workers", "1", "--overwrite"]) == 0
    assert "2 hints computed" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(hint_path(out, FOLDER, 1, "r")), saved["r"])  # deterministic
    assert not [p for p in out.rglob("*") if "tmp" in p.name]

    sample = KittiRawDataset(root, [f"{FOLDER} 1 r"], 96, 320, (0, "s"), hints_dir=out, train=False)[0]
    np.testing.assert_array_equal(sample.depth_hint[0].numpy(), saved["r"])


def test_interrupted_write_leaves_no_file(kitti_sample, tmp_path, monkeypatch):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))

    def failing_save(handle, array):
        handle.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(hints.np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        compute_hints(
            DataConfig(data_path=str(root)), [f"{FOLDER} 1 l"], tmp_path / "hints", HintSettings(96, 320, (1,), (16,)),
            progress=False,
        )
    # only the settings record, written before any hint, remains
    assert [p.name for p in (tmp_path / "hints").rglob("*") if p.is_file()] == [hints.SETTINGS_FILE]


def test_missing_inputs_and_split_names(kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    partner = root / FOLDER / "image_03/data/0000000001.jpg"
    partner.unlink()
    splits = tmp_path / "splits"
    for name in ("tiny", "testonly"):
        (splits / name).mkdir(parents=True)
    write_lines(splits / "tiny" / "train_files.txt", [f"{FOLDER} 1 l"])
    write_lines(splits / "tiny" / "val_files.txt", [f"{FOLDER} 1 r"])
    write_lines(splits / "testonly" / "test_files.txt", [f"{FOLDER} 1 l"])
    argv = ["--data-path", str(root), "--out", str(tmp_path / "hints"), *HINT_ARGS]
    with pytest.raises(FileNotFoundError, match=f"image not found: {partner} \\(2 pairs"):
        run_hints([*argv, "--split", "tiny", "--splits-dir", str(splits)])
    assert run_hints([*argv, "--split", "tiny", "--splits-dir", str(splits), "--skip-missing"]) == 0
    assert "0 hints computed, 0 already present, 2 missing inputs" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="split 'testonly' has neither a train nor a val list"):
        run_hints([*argv, "--split", "testonly", "--splits-dir", str(splits)])
    assert cli.main(["hints", *argv, "--split-file", str(tmp_path / "absent.txt")]) == 2
    assert "absent.txt" in capsys.readouterr().err


SMALL = ["--block-sizes", "1", "--num-disparities", "16", "--workers", "1"]


def test_resume_refuses_hints_of_other_settings(kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "lines.txt", [f"{FOLDER} 1 l", f"{FOLDER} 1 r"])
    out = tmp_path / "hints"
    argv = ["hints", "--data-path", str(root), "--split-file", str(split), "--out", str(out), *SMALL]
    small, large = ["--height", "48", "--width", "160"], ["--height", "96", "--width", "320"]
    assert cli.main([*argv, *small]) == 0
    settings = out / hints.SETTINGS_FILE
    recorded = json.loads(settings.read_text())
    assert recorded == {
        "height": 48, "width": 160, "img_ext": ".jpg", "block_sizes": [1], "num_disparities": [16],
        "baseline": 0.1, "normalised_fx": 0.58,
    }
    assert "2 hints computed" in capsys.readouterr().out

    # the same settings resume; others are refused, naming the settings file and what differs
    assert cli.main([*argv, *small]) == 0
    resumed = capsys.readouterr().out
    assert "0 hints computed, 2 already present" in resumed and "nan" not in resumed
    assert cli.main([*argv, *large]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mldanet hints: error: the hints in {out} were computed with other settings ({settings}: height 48 there, "
        "96 asked; width 160 there, 320 asked): pass --overwrite to compute them again with these, or choose another --out"
    )
    assert cli.main([*argv, *small[:2], "--width", "160", "--block-sizes", "1", "3"]) == 2
    assert "block_sizes [1] there, [1, 3] asked" in capsys.readouterr().err
    assert np.load(hint_path(out, FOLDER, 1, "l")).shape == (48, 160)  # nothing was touched

    # --overwrite recomputes at the asked size and records it
    assert cli.main([*argv, *large, "--overwrite"]) == 0
    assert "2 hints computed, 0 already present" in capsys.readouterr().out
    assert np.load(hint_path(out, FOLDER, 1, "r")).shape == (96, 320)
    assert json.loads(settings.read_text())["width"] == 320


def test_hints_without_a_settings_file_must_have_the_asked_size(kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "lines.txt", [f"{FOLDER} 1 l"])
    out = tmp_path / "hints"
    old = hint_path(out, FOLDER, 1, "l")  # as an earlier version left it: no hints_settings.json
    old.parent.mkdir(parents=True)
    np.save(old, np.ones((48, 160), np.float32))
    argv = ["hints", "--data-path", str(root), "--split-file", str(split), "--out", str(out), *SMALL]
    assert cli.main([*argv, "--height", "96", "--width", "320"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mldanet hints: error: {old} is 160×48, not the 320×96 asked, and {out} has no hints_settings.json to say "
        "how its hints were computed: pass --overwrite to compute them again, or choose another --out"
    )
    assert not (out / hints.SETTINGS_FILE).exists()
    assert cli.main([*argv, "--height", "48", "--width", "160"]) == 0
    assert "0 hints computed, 1 already present" in capsys.readouterr().out
    assert json.loads((out / hints.SETTINGS_FILE).read_text())["height"] == 48


def test_hints_path_checks(kitti_sample, tmp_path, capsys, monkeypatch):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "lines.txt", [f"{FOLDER} 1 l"])
    a_file = write_lines(tmp_path / "a_file.txt", ["x"])

    def run(data, out):
        code = cli.main(["hints", "--data-path", str(data), "--split-file", str(split), "--out", str(out), *HINT_ARGS])
        return code, capsys.readouterr().err.strip()

    assert run(a_file, tmp_path / "hints") == (2, f"mldanet hints: error: data path {a_file} is a file, not a folder")
    assert run(tmp_path / "absent", tmp_path / "hints") == (2, f"mldanet hints: error: data path not found: {tmp_path / 'absent'}")
    assert run(root, a_file) == (2, f"mldanet hints: error: hints folder {a_file} is a file, not a folder")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != read_only and real_access(path, mode))
    assert run(root, read_only) == (
        2, f"mldanet hints: error: cannot write into hints folder {read_only}: the folder is not writable"
    )
    assert run(root, read_only / "sub") == (
        2, f"mldanet hints: error: cannot write hints folder {read_only / 'sub'}: {read_only} is not writable"
    )
    assert not any(read_only.iterdir())


def test_a_damaged_settings_file_is_named(kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "lines.txt", [f"{FOLDER} 1 l"])
    out = tmp_path / "hints"
    out.mkdir()
    settings = out / hints.SETTINGS_FILE
    argv = ["hints", "--data-path", str(root), "--split-file", str(split), "--out", str(out), *HINT_ARGS[:4], *SMALL]
    for text in ("{not json", "[1, 2]"):
        settings.write_text(text)
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"mldanet hints: error: {settings} is not a hints settings file (")
        assert err.endswith("): delete it and pass --overwrite")
    assert cli.main([*argv, "--overwrite"]) == 0
    assert json.loads(settings.read_text())["height"] == 96


def test_disparity_ranges_wider_than_the_hints_name_both_flags(tmp_path):
    with pytest.raises(ValueError, match=r"--num-disparities 96 must be below the hint width \(--width 96\)"):
        compute_hints(DataConfig(data_path=str(tmp_path)), [], tmp_path / "hints", HintSettings(32, 96, (1,), (64, 96)))


def test_hints_into_a_folder_another_process_is_writing_are_refused(kitti_sample, tmp_path, capsys):
    from mldanet.folder_lock import FolderLock

    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1,))
    split = write_lines(tmp_path / "lines.txt", [f"{FOLDER} 1 l"])
    out = tmp_path / "hints"
    argv = ["hints", "--data-path", str(root), "--split-file", str(split), "--out", str(out), *HINT_ARGS]
    with FolderLock(out.mkdir() or out, "mldanet hints"):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
    assert err.startswith(f"mldanet hints: error: hints folder --out {out} is in use by `mldanet hints` (PID {os.getpid()} ")
    assert not list(out.rglob("*.npy"))
    assert cli.main(argv) == 0 and list(out.rglob("*.npy"))  # free once the holder is done
