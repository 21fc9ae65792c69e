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
