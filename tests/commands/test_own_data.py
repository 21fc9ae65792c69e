"""Your own data end to end, through the commands a user types (README "Train on your own data").

``mldanet synth --layout folder`` writes sequences whose true depth is known; check-data, train,
evaluate and predict then run on them exactly as on a user's folder, with the camera file moved
out (``--intrinsics``) as a user's would be.
"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from mldanet import cli

COMMON = ["--height", "64", "--width", "192", "--batch-size", "2", "--num-workers", "0", "--weights-init", "scratch",
          "--no-progress", "--log-every", "1"]


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    data = root / "my_drives"
    assert cli.main(["synth", "--layout", "folder", "--out", str(data), "--drives", "2", "--frames", "12",
                     "--width", "192", "--height", "64", "--workers", "1", "--no-progress", "--seed", "4"]) == 0
    (data / "synth_info.json").unlink()  # a user's folder has no such file
    shutil.move(data / "camera.yaml", root / "cam.yaml")
    return data, root / "cam.yaml"


def test_check_data_says_what_it_found(own_data, capsys):
    data, camera = own_data
    assert cli.main(["check-data", "--data-path", str(data), "--no-progress"]) == 2  # no camera given
    assert "no camera for sequence" in capsys.readouterr().out
    assert cli.main(["check-data", "--data-path", str(data), "--intrinsics", str(camera), "--mode", "MS",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 sequences, 24 frames" in out and "12 right, 12 depth maps (" in out and "% of pixels valid), 10 usable targets" in out
    assert f"ready: mldanet train --dataset folder --data-path {data} --intrinsics {camera} --mode MS" in out


@pytest.mark.parametrize("mode", ["M", "S", "MS"])
def test_train_then_evaluate(own_data, tmp_path, capsys, caplog, mode):
    data, camera = own_data
    run = tmp_path / "run"
    args = ["train", "--dataset", "folder", "--data-path", str(data), "--intrinsics", str(camera), "--mode", mode,
            "--max-steps", "3", "--out", str(run), *COMMON]
    assert cli.main(args) == 0
    if "S" in mode:  # the one-command promise: hints are on by default, folders have none
        assert "the folder dataset was given no --hints-dir (`mldanet hints --dataset folder` computes them): " \
            "training without depth hints" in caplog.text
        assert "use_hints: false" in (run / "config.yaml").read_text()
    validation = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("validation:"))
    abs_rel = float(validation.split("abs_rel ")[1].split(",")[0])
    # --dataset comes from the checkpoint
    assert cli.main(["evaluate", "--checkpoint", str(run), "--data-path", str(data),
                     "--num-workers", "0", "--json", str(tmp_path / "eval.json")]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    # the frames training held out, scored against the depth maps: what validation measured
    assert result["count"] == 2 and result["gt"] == "depth maps" and result["eigen_crop"] is False
    assert result["scaling"] == ("median" if mode == "M" else "stereo")
    assert result["metrics"]["abs_rel"] == pytest.approx(abs_rel, abs=5e-5)
    if mode != "M":
        assert result["stereo_factor"] == 5.4
    # the depth maps are dense: the boundary errors come too
    boundary = result["boundary"]
    assert set(boundary) == {"dbe_acc", "dbe_comp", "edge_precision", "edge_recall", "edge_f1", "count"}
    assert 0 < boundary["dbe_comp"] <= 10 and 0 <= boundary["edge_f1"] <= 1
    assert cli.main(["predict", "--checkpoint", str(run), str(data / "drive_0001" / "0000000005.jpg"),
                     "--out", str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred" / "0000000005_depth.npy").is_file()


def test_frame_step_and_a_written_split(own_data, tmp_path, capsys):
    data, camera = own_data
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    assert cli.main(["check-data", "--data-path", str(copy), "--intrinsics", str(camera), "--frame-step", "2",
                     "--write-splits", "--no-progress"]) == 0
    train_lines = (copy / "splits" / "train_files.txt").read_text().splitlines()
    assert len(train_lines) + len((copy / "splits" / "val_files.txt").read_text().splitlines()) == 2 * 8
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "folder", "--data-path", str(copy), "--intrinsics", str(camera), "--mode", "M",
                     "--frame-step", "2", "--max-steps", "1", "--out", str(run), *COMMON]) == 0
    assert f"{len(train_lines)} training samples" in capsys.readouterr().out


def test_mistakes_are_one_line(own_data, tmp_path, capsys):
    data, camera = own_data
    base = ["train", "--dataset", "folder", "--data-path", str(data), "--out", str(tmp_path / "r"), *COMMON]
    assert cli.main([*base, "--mode", "M"]) == 2
    assert "no camera for sequence" in capsys.readouterr().err
    assert cli.main([*base, "--intrinsics", str(camera), "--mode", "M", "--frame-step", "0"]) == 2
    assert "data.frame_step=0 must be at least 1" in capsys.readouterr().err
    assert cli.main(["train", "--dataset", "nope", "--data-path", str(data), "--out", str(tmp_path / "r6")]) == 2
    assert "data.dataset='nope' is not one of" in capsys.readouterr().err
    assert not (tmp_path / "r6").exists()  # refused before the run folder is made


def test_depth_maps_for_some_frames_only(own_data, tmp_path, capsys, caplog):
    """Validation scores the held-out frames that have a depth map; evaluate says how many it left out."""
    data, camera = own_data
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "drive_0001" / "depth" / "0000000006.npy").unlink()  # a held-out frame (every 10th target, from the 6th)
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "folder", "--data-path", str(copy), "--intrinsics", str(camera), "--mode", "M",
                     "--max-steps", "1", "--out", str(run), *COMMON]) == 0
    assert "validation: 1 of 2 held-out frames have no ground truth and are left out" in caplog.text
    assert "abs_rel" in capsys.readouterr().out
    assert cli.main(["evaluate", "--checkpoint", str(run), "--data-path", str(copy), "--num-workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 test frames have no depth map and are left out" in out and ": 1 frames, median scaling" in out


def test_a_split_line_naming_a_deleted_frame(own_data, tmp_path, capsys):
    data, camera = own_data
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "splits").mkdir()
    (copy / "splits" / "train_files.txt").write_text(
        "drive_0001 0000000003.jpg\ndrive_0001 0000000099.jpg\ndrive_0001 0000000004.jpg\n"
    )
    base = ["train", "--dataset", "folder", "--data-path", str(copy), "--intrinsics", str(camera), "--mode", "M",
            "--max-steps", "1", *COMMON, "--set", "train.validate=false"]
    assert cli.main([*base, "--out", str(tmp_path / "r1")]) == 2
    assert "line 2: frame" in capsys.readouterr().err
    assert cli.main([*base, "--out", str(tmp_path / "r2"), "--set", "data.skip_missing=true"]) == 0
    assert "2 training samples" in capsys.readouterr().out


def test_stereo_training_with_folder_hints(own_data, tmp_path, caplog):
    data, camera = own_data
    hints = tmp_path / "hints"
    assert cli.main(["hints", "--dataset", "folder", "--data-path", str(data), "--intrinsics", str(camera),
                     "--out", str(hints), "--width", "192", "--height", "64", "--num-disparities", "32", "48",
                     "--workers", "1"]) == 0
    assert len(list(hints.rglob("*.npy"))) == 2 * 10  # every target of mode MS, train and val
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "folder", "--data-path", str(data), "--intrinsics", str(camera),
                     "--mode", "MS", "--hints-dir", str(hints), "--max-steps", "2", "--out", str(run), *COMMON]) == 0
    assert "training without depth hints" not in caplog.text
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert any("loss/hints" in row for row in state["history"])


def bad_ground_truth(data, copy, case: str) -> None:
    """Issue 27's four cases, made in ``copy`` of the folder ``data``."""
    shutil.copytree(data, copy)
    for path in sorted(copy.glob("*/depth/*.npy")):
        depth = np.load(path)
        if case == "50x50":
            np.save(path, cv2.resize(depth, (50, 50), interpolation=cv2.INTER_NEAREST))
        elif case == "npy+png":
            cv2.imwrite(str(path.with_suffix(".png")), (depth * 512).astype(np.uint16))
        elif case == "8-bit png":
            cv2.imwrite(str(path.with_suffix(".png")), np.clip(depth, 0, 255).astype(np.uint8))
            path.unlink()
        elif case == "millimetres":
            np.save(path, np.round(depth * 1000).astype(np.int64))


BAD_GROUND_TRUTH = {
    "50x50": r"depth map .*drive_0001/depth/\d{10}.npy is 50×50 but its frame .*drive_0001/\d{10}.jpg is 192×64",
    "npy+png": r"two depth maps for frame .*drive_0001/\d{10}.jpg: .*\d{10}.npy and .*\d{10}.png",
    "8-bit png": r"depth map .*drive_0001/depth/\d{10}.png is an 8-bit PNG",
    "millimetres": r"depth map .*drive_0001/depth/\d{10}.npy: its values are mostly beyond 80 m .*'depth_scale: 0.001'",
}


@pytest.fixture(scope="module")
def trained_run(own_data, tmp_path_factory):
    data, camera = own_data
    run = tmp_path_factory.mktemp("good") / "run"
    assert cli.main(["train", "--dataset", "folder", "--data-path", str(data), "--intrinsics", str(camera), "--mode", "M",
                     "--max-steps", "1", "--out", str(run), *COMMON]) == 0
    return run


@pytest.mark.parametrize("case", sorted(BAD_GROUND_TRUTH))
def test_bad_ground_truth_is_refused_by_check_data_train_and_evaluate(own_data, trained_run, tmp_path, capsys, case):
    """Each of issue 27's cases gave a number (or failed at evaluate); now each command refuses it, naming the file."""
    import re

    data, camera = own_data
    copy = tmp_path / "data"
    bad_ground_truth(data, copy, case)
    capsys.readouterr()
    assert cli.main(["check-data", "--data-path", str(copy), "--intrinsics", str(camera), "--no-progress"]) == 2
    out = capsys.readouterr().out
    assert re.search(r"    problem: " + BAD_GROUND_TRUTH[case], out) and "ready" not in out
    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "folder", "--data-path", str(copy), "--intrinsics", str(camera), "--mode", "M",
                     "--max-steps", "1", "--out", str(run), *COMMON]) == 2
    captured = capsys.readouterr()
    assert re.search(BAD_GROUND_TRUTH[case], captured.err) and "step 1" not in captured.out  # before the first step
    assert not (run / "checkpoints").exists()
    assert cli.main(["evaluate", "--checkpoint", str(trained_run), "--data-path", str(copy), "--num-workers", "0"]) == 2
    assert re.search(BAD_GROUND_TRUTH[case], capsys.readouterr().err)


def test_depth_scale_reads_millimetres_as_the_metres_they_are(own_data, trained_run, tmp_path, capsys):
    data, camera = own_data
    copy = tmp_path / "data"
    bad_ground_truth(data, copy, "millimetres")
    scaled = tmp_path / "cam.yaml"
    scaled.write_text(camera.read_text() + "depth_scale: 0.001\n")
    assert cli.main(["check-data", "--data-path", str(copy), "--intrinsics", str(scaled), "--no-progress"]) == 0
    assert "ready" in capsys.readouterr().out
    scores = []
    for root, cam in ((data, camera), (copy, scaled)):
        assert cli.main(["evaluate", "--checkpoint", str(trained_run), "--data-path", str(root), "--intrinsics", str(cam),
                         "--num-workers", "0", "--json", str(tmp_path / "e.json")]) == 0
        scores.append(json.loads((tmp_path / "e.json").read_text())["metrics"])
    assert scores[1] == pytest.approx(scores[0], rel=1e-3)  # half a millimetre of rounding
