"""The embedded default end to end: synth -> hints -> train -> evaluate -> predict -> report."""

import json

import numpy as np

from mldanet.cli import main
from mldanet.demo import median_depth_prior


def test_median_depth_prior_ignores_missing_measurements():
    a = np.array([[1.0, 0.0], [4.0, 0.0]], np.float32)
    b = np.array([[3.0, 2.0], [0.0, 0.0]], np.float32)
    c = np.array([[5.0, 0.0], [8.0, 0.0]], np.float32)
    prior = median_depth_prior([a, b, c])
    # per pixel median of the valid values; a never-measured pixel gets the median of all valid values (3.5)
    np.testing.assert_allclose(prior, [[3.0, 2.0], [6.0, 3.5]])


def test_tiny_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--tiny", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    keys = {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"}
    for row in ("untrained", "prior", "trained"):
        assert set(report[row]) == keys
    assert report["trained"]["abs_rel"] < report["untrained"]["abs_rel"]
    assert report["trained"]["a1"] > report["untrained"]["a1"]
    for name in ("report.md", "report.html", "training_curves.png", "picture_grid.png", "run/checkpoints/last.pt"):
        assert (out / name).is_file(), name
    assert {"synth: render the drives", "train: MLDA-Net MS + hints, 24 steps", "total"} <= set(report["seconds"])
    assert "picture_grid.png" in (out / "report.html").read_text()
    assert list((out / "predictions").glob("*_depth.png"))


def test_demo_split_takes_one_view_per_frame_and_every_other_test_frame(tmp_path):
    from mldanet.demo import DEMO_SPLIT, demo_split

    synth = tmp_path / "splits" / "synth"
    synth.mkdir(parents=True)
    drive, test_drive = "2000_01_01/2000_01_01_drive_0001_sync", "2000_01_01/2000_01_01_drive_0002_sync"
    (synth / "train_files.txt").write_text("".join(f"{drive} {i} {side}\n" for i in range(1, 5) for side in "lr"))
    (synth / "val_files.txt").write_text(f"{drive} 10 l\n")
    (synth / "test_files.txt").write_text("".join(f"{test_drive} {i} l\n" for i in range(1, 6)))
    train, test = demo_split(tmp_path / "splits")
    assert train == [f"{drive} 1 r", f"{drive} 2 l", f"{drive} 3 r", f"{drive} 4 l"]
    assert test == [f"{test_drive} {i} l" for i in (1, 3, 5)]
    written = tmp_path / "splits" / DEMO_SPLIT
    assert (written / "train_files.txt").read_text().splitlines() == train
    assert (written / "test_files.txt").read_text().splitlines() == test
    assert (written / "val_files.txt").read_text() == f"{drive} 10 l\n"
