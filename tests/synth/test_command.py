"""``mldanet synth`` end to end through the command-line entry point."""

from __future__ import annotations

import cv2
import numpy as np

from mldanet.cli import main
from mldanet.synth.layouts import DATE


def test_synth_command_writes_a_loadable_drive(tmp_path, capsys):
    out = tmp_path / "kitti"
    code = main(["synth", "--out", str(out), "--drives", "2", "--frames", "3", "--width", "160", "--height", "48",
                 "--seed", "5", "--workers", "1", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 drives × 3 stereo frames" in printed and "test drive (held out)" in printed
    folder = out / DATE / f"{DATE}_drive_0001_sync"
    for cam in ("image_02", "image_03"):
        assert sorted(p.name for p in (folder / cam / "data").iterdir()) == [f"{i:010d}.jpg" for i in range(3)]
    image = cv2.imread(str(folder / "image_02" / "data" / "0000000001.jpg"))
    assert image.shape == (48, 160, 3) and image.std() > 10
    scan = np.fromfile(folder / "velodyne_points" / "data" / "0000000001.bin", dtype=np.float32).reshape(-1, 4)
    assert len(scan) > 10_000
    assert (out / "splits" / "synth" / "test_files.txt").read_text() == f"{DATE}/{DATE}_drive_0002_sync 1 l\n"


def test_synth_command_reports_bad_values(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--drives", "1", "--no-progress"]) == 2
    assert "--drives 1" in capsys.readouterr().err
