"""``mldanet evaluate`` end to end: precomputed disparities, a checkpoint on the real KITTI frame,
and the clear one-line errors for mismatched counts and for corrupt or foreign checkpoints."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mldanet.cli import main
from mldanet.config import Config
from mldanet.data.ground_truth import generate_depth_map
from mldanet.evaluation.evaluate import check_pred_aspects, evaluate_checkpoint
from mldanet.evaluation.protocol import evaluate_disparities
from mldanet.geometry import disp_to_depth
from mldanet.models import build_depth_net
from mldanet.models.checkpoint import load_depth_net
from mldanet.training.checkpoint import save_checkpoint

from ..data.kitti_layout import FOLDER, make_kitti_drive, write_lines

LINE = "2011_10_03/2011_10_03_drive_0000_sync 1 l"


def write_checkpoint(path: Path, mode: str = "MS", backbone: str = "resnet18", config_backbone: str | None = None) -> Path:
    """A scratch monodepth2-style network at 64×128 (small and fast); ``config_backbone`` lies about it."""
    config = Config()
    config.model.backbone = config_backbone or backbone
    config.model.variant = "baseline"
    config.model.weights_init = "scratch"
    config.data.height, config.data.width = 64, 128
    config.train.mode = mode
    torch.manual_seed(0)
    net = build_depth_net(backbone, "baseline", pretrained=False)
    payload = {"config": config.to_dict(), "depth_net": net.state_dict(), "pose_net": None, "step": 0, "epoch": 0}
    return save_checkpoint(payload, path)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    good = write_checkpoint(folder / "ms.pt")
    truncated = folder / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    payload = torch.load(good, weights_only=True)
    payload["config"]["train"]["mode"] = "M"
    mono = folder / "m.pt"
    torch.save(payload, mono)
    foreign = write_checkpoint(folder / "r50_config.pt", config_backbone="resnet50")
    malicious = folder / "malicious.pt"
    torch.save({**payload, "hook": RunsACommand(folder / "pwned")}, malicious)
    return {"MS": good, "M": mono, "truncated": truncated, "foreign": foreign, "malicious": malicious}


class RunsACommand:
    """Unpickling this would run a shell command (creating ``marker``): weights-only loading must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def split_file(tmp_path: Path) -> Path:
    path = tmp_path / "test_files.txt"
    path.write_text(LINE + "\n")
    return path


def write_inputs(tmp_path: Path, gts: list[np.ndarray], disps: list[np.ndarray]) -> tuple[Path, Path]:
    gt_path, disp_path = tmp_path / "gt_depths.npz", tmp_path / "disps.npy"
    np.savez_compressed(gt_path, data=np.stack(gts))  # monodepth2 writes a plain stacked array
    np.save(disp_path, np.stack(disps))
    return gt_path, disp_path


def test_pred_disps_stereo_through_the_cli(tmp_path, capsys):
    # 2 frames, 20×60: the crop is rows 8..18, columns 2..56; gt 10 m, prediction 12 m (×5.4).
    gt = np.zeros((20, 60), np.float32)
    gt[8:19, 2:57] = 10.0
    gt[:8] = 3.0  # above the crop: ignored
    disp = np.full((10, 30), 5.4 / 12.0, np.float32)
    gt_path, disp_path = write_inputs(tmp_path, [gt, gt], [disp, disp])
    out = tmp_path / "result.json"

    code = main(["evaluate", "--pred-disps", str(disp_path), "--gt", str(gt_path), "--scaling", "stereo", "--json", str(out)])

    assert code == 0
    printed = capsys.readouterr().out
    assert "2 frames, stereo scaling (×5.4)" in printed
    assert "   0.200 &    0.400 &    2.000 &    0.182 &    1.000 &    1.000 &    1.000 \\\\" in printed
    result = json.loads(out.read_text())
    expected = {"abs_rel": 0.2, "sq_rel": 0.4, "rmse": 2.0, "rmse_log": math.log(1.2), "a1": 1.0, "a2": 1.0, "a3": 1.0}
    assert result["metrics"] == pytest.approx(expected, rel=1e-6)
    assert result["scaling"] == "stereo" and result["count"] == 2 and result["stereo_factor"] == 5.4
    assert result["pred_disps"] == str(disp_path) and result["gt"] == str(gt_path) and result["eigen_crop"] is True


def test_pred_disps_on_dense_ground_truth_report_boundaries(tmp_path, capsys):
    # A near box (5 m) before a wall (40 m), the prediction's box 3 px to the right: ε_acc = ε_comp = 3 px
    # on the box's vertical sides, less where its horizontal sides overlap.
    gt = np.full((48, 96), 40.0, np.float32)
    gt[12:36, 30:60] = 5.0
    pred = np.full_like(gt, 40.0)
    pred[12:36, 33:63] = 5.0
    gt_path, disp_path = write_inputs(tmp_path, [gt, gt], [5.4 / gt, 5.4 / pred])
    out = tmp_path / "result.json"
    assert main(["evaluate", "--pred-disps", str(disp_path), "--gt", str(gt_path), "--scaling", "stereo",
                 "--no-eigen-crop", "--json", str(out)]) == 0
    assert "depth boundaries (2 frames with edges)" in capsys.readouterr().out
    boundary = json.loads(out.read_text())["boundary"]
    assert boundary["count"] == 2
    sides, top_bottom = 2 * 24, 2 * 30  # edge pixels at distance 3, and at distance 0 (±1 at the corners)
    expected = 0.5 * (0 + 3 * sides / (sides + top_bottom))  # frame 1 scores 0, frame 2 the shifted box
    assert boundary["dbe_acc"] == pytest.approx(expected, abs=0.3)
    assert boundary["dbe_comp"] == pytest.approx(expected, abs=0.3)


def test_pred_disps_median_reports_the_ratios(tmp_path, capsys):
    gt = np.zeros((20, 60), np.float32)
    gt[8:19, 2:57] = np.linspace(5.0, 50.0, 55)
    disps = [(k / np.maximum(gt, 1e-3)).astype(np.float32)[None] for k in (2.0, 3.0, 7.0)]  # N×1×h×w is accepted
    gt_path, disp_path = write_inputs(tmp_path, [gt] * 3, disps)
    out = tmp_path / "result.json"

    code = main(["evaluate", "--pred-disps", str(disp_path), "--gt", str(gt_path), "--scaling", "median", "--json", str(out)])

    assert code == 0
    assert "ratio median 3.000, std 0.720" in capsys.readouterr().out  # std of (2, 3, 7) / 3 = sqrt(14/27)
    result = json.loads(out.read_text())
    assert result["ratio_median"] == pytest.approx(3.0, rel=1e-6)
    assert result["ratio_std"] == pytest.approx(np.std([2 / 3, 1.0, 7 / 3]), rel=1e-5)
    assert result["metrics"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)


def test_count_mismatch_is_refused_with_both_counts(tmp_path, capsys):
    gt = np.full((20, 60), 10.0, np.float32)
    gt_path, disp_path = write_inputs(tmp_path, [gt] * 3, [np.ones((10, 30), np.float32)] * 2)
    code = main(["evaluate", "--pred-disps", str(disp_path), "--gt", str(gt_path), "--scaling", "stereo"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        f"mldanet evaluate: error: {disp_path} holds 2 disparities but {gt_path} holds 3 ground-truth depth maps: "
        "they must be the same frames in the same order"
    )


def test_pred_disps_of_another_aspect_ratio_are_refused_not_stretched(tmp_path, capsys):
    """Issue 27: a 50×50 disparity against 416×128 ground truth was resized to it and scored."""
    gt = np.full((128, 416), 10.0, np.float32)
    gt_path, disp_path = write_inputs(tmp_path, [gt, gt], [np.full((128, 416), 0.5, np.float32)] * 2)
    np.save(disp_path, np.stack([np.full((50, 50), 0.5, np.float32)] * 2))
    assert main(["evaluate", "--pred-disps", str(disp_path), "--gt", str(gt_path), "--scaling", "median"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mldanet evaluate: error: {disp_path}: disparity [0] is 50×50 (width/height 1.000) but ground-truth map [0] of "
        f"{gt_path} is 416×128 (3.250): resizing one to the other would stretch it by 69 % (more than 5 %): they are "
        "not of the same frames, or one is transposed"
    )
    # KITTI's own case: a 640×192 prediction against 1242×375 ground truth differs by 0.7 %
    check_pred_aspects([np.ones((192, 640))], [np.ones((375, 1242))], "d.npy", "gt.npz")
    with pytest.raises(ValueError, match=r"d.npy: disparity \[1\] is 192×640 .* map \[1\] of gt.npz, line 2: 'b 1 l'"):
        check_pred_aspects([np.ones((192, 640)), np.ones((640, 192))], [np.ones((375, 1242))] * 2, "d.npy", "gt.npz",
                           ["a 0 l", "b 1 l"])


def test_gt_of_another_split_is_refused_naming_both_files(checkpoints, kitti_sample, split_file, tmp_path, capsys):
    gt_path = tmp_path / "gt_depths.npz"
    np.savez_compressed(gt_path, data=np.ones((2, 8, 8), np.float32))
    code = main(["evaluate", "--checkpoint", str(checkpoints["MS"]), "--data-path", str(kitti_sample),
                 "--split-file", str(split_file), "--gt", str(gt_path)])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"mldanet evaluate: error: {gt_path} holds 2 ground-truth depth maps but {split_file} lists 1 test frames: "
        "export the ground truth from the same split (mldanet export-gt)"
    )


def test_pred_disps_needs_gt_and_scaling(tmp_path, capsys):
    _, disp_path = write_inputs(tmp_path, [np.ones((4, 4), np.float32)], [np.ones((4, 4), np.float32)])
    assert main(["evaluate", "--pred-disps", str(disp_path)]) == 2
    assert "--pred-disps needs --gt and --scaling" in capsys.readouterr().err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.ones(5, np.float32))
    assert main(["evaluate", "--pred-disps", str(bad), "--gt", "x.npz", "--scaling", "stereo"]) == 2
    assert "ground-truth file not found: x.npz" in capsys.readouterr().err


def independent_prediction(checkpoint: Path, image_path: Path) -> np.ndarray:
    """Scaled disparity of the real frame: the network on the area-resized image, by hand."""
    net, _ = load_depth_net(checkpoint)
    rgb = cv2.cvtColor(cv2.imread(str(image_path)), cv2.COLOR_BGR2RGB)
    small = cv2.resize(rgb, (128, 64), interpolation=cv2.INTER_AREA)
    image = torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        return disp_to_depth(net(image)[0], 0.1, 100.0)[0][0, 0].numpy()


@pytest.mark.parametrize("mode, scaling", [("MS", "stereo"), ("M", "median")])
def test_checkpoint_on_the_real_kitti_frame(checkpoints, kitti_sample, split_file, tmp_path, capsys, mode, scaling):
    out = tmp_path / "result.json"
    code = main([
        "evaluate", "--checkpoint", str(checkpoints[mode]), "--data-path", str(kitti_sample),
        "--split-file", str(split_file), "--json", str(out), "--num-workers", "0", "--device", "cpu",
    ])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["scaling"] == scaling and result["count"] == 1 and result["gt"] == "velodyne"
    assert result["checkpoint"] == str(checkpoints[mode])

    drive = kitti_sample / "2011_10_03"
    gt = generate_depth_map(drive, drive / "2011_10_03_drive_0000_sync/velodyne_points/data/0000000001.bin", 2)
    disp = independent_prediction(checkpoints[mode], drive / "2011_10_03_drive_0000_sync/image_02/data/0000000001.jpg")
    expected = evaluate_disparities([disp], [gt], scaling=scaling)
    assert result["metrics"] == pytest.approx(expected.metrics, rel=1e-5)
    if scaling == "median":
        assert result["ratio_median"] == pytest.approx(expected.ratio_median, rel=1e-5)


def test_evaluate_checkpoint_api_with_given_ground_truth(checkpoints, kitti_sample):
    gt = np.zeros((375, 1242), np.float32)
    gt[200:300, 100:1100] = 20.0
    result = evaluate_checkpoint(checkpoints["MS"], kitti_sample, [LINE], [gt], post_process=True, device="cpu", progress=False)
    assert result.count == 1 and result.scaling == "stereo"
    with pytest.raises(ValueError, match="1 test frames but 2 ground-truth depth maps"):
        evaluate_checkpoint(checkpoints["MS"], kitti_sample, [LINE], [gt, gt], progress=False)


@pytest.mark.parametrize("command", ["evaluate", "predict", "export-onnx"])
@pytest.mark.parametrize("kind, message", [
    ("truncated", "is corrupt or truncated"),
    ("foreign", "the depth weights do not fit this network"),
    ("malicious", "was refused unread by weights-only loading"),
])
def test_bad_checkpoints_give_one_line_errors(checkpoints, kitti_sample, split_file, tmp_path, capsys, command, kind, message):
    checkpoint = str(checkpoints[kind])
    argv = {
        "evaluate": ["evaluate", "--checkpoint", checkpoint, "--data-path", str(kitti_sample), "--split-file", str(split_file)],
        "predict": ["predict", "--checkpoint", checkpoint, str(split_file), "--out", str(tmp_path / "out")],
        "export-onnx": ["export-onnx", "--checkpoint", checkpoint, "--out", str(tmp_path / "model.onnx")],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"mldanet {command}: error:")]
    assert len(lines) == 1 and lines[0] == err.strip().splitlines()[-1]
    assert f"checkpoint {checkpoint}" in lines[0] and message in lines[0]
    assert not (checkpoints["malicious"].parent / "pwned").exists()


# ------------------------------------------------- ground truth of the right frames, paths checked first


def test_gt_exported_for_another_split_is_refused(checkpoints, kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1, 2))
    exported = write_lines(tmp_path / "exported.txt", [f"{FOLDER} 1 l"])
    other = write_lines(tmp_path / "other.txt", [f"{FOLDER} 2 l"])  # as long, other frames
    gt_path = tmp_path / "gt_depths.npz"
    assert main(["export-gt", "--data-path", str(root), "--split-file", str(exported), "--out", str(gt_path)]) == 0
    scans = ["evaluate", "--checkpoint", str(checkpoints["MS"]), "--data-path", str(root), "--num-workers", "0", "--device", "cpu"]
    argv = [*scans, "--gt", str(gt_path)]
    capsys.readouterr()
    assert main([*argv, "--split-file", str(other)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mldanet evaluate: error: {gt_path} holds the ground truth of other frames than {other}: its line 1 is "
        f"'{FOLDER} 1 l' but the split's is '{FOLDER} 2 l'; export the ground truth from this split (mldanet export-gt)"
    )
    # its own split, written another way (zero-padded frame), is accepted and scores as the scans do
    padded = write_lines(tmp_path / "padded.txt", [f"{FOLDER} 0000000001 l"])
    assert main([*argv, "--split-file", str(padded), "--json", str(tmp_path / "with_gt.json")]) == 0
    assert main([*scans, "--split-file", str(padded), "--json", str(tmp_path / "scans.json")]) == 0
    with_gt, scans = (json.loads((tmp_path / name).read_text()) for name in ("with_gt.json", "scans.json"))
    assert with_gt["gt"] == str(gt_path) and scans["gt"] == "velodyne"
    assert with_gt["metrics"] == scans["metrics"]


def test_pred_disps_with_a_split_file_are_checked_against_the_gt_lines(kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1, 2))
    exported = write_lines(tmp_path / "exported.txt", [f"{FOLDER} 1 l"])
    other = write_lines(tmp_path / "other.txt", [f"{FOLDER} 2 l"])
    two = write_lines(tmp_path / "two.txt", [f"{FOLDER} 1 l", f"{FOLDER} 2 l"])
    gt_path = tmp_path / "gt_depths.npz"
    assert main(["export-gt", "--data-path", str(root), "--split-file", str(exported), "--out", str(gt_path)]) == 0
    disps = tmp_path / "disps.npy"
    np.save(disps, np.full((1, 24, 80), 0.1, np.float32))
    argv = ["evaluate", "--pred-disps", str(disps), "--gt", str(gt_path), "--scaling", "median"]
    capsys.readouterr()
    assert main([*argv, "--split-file", str(other)]) == 2
    assert f"{gt_path} holds the ground truth of other frames than {other}" in capsys.readouterr().err
    assert main([*argv, "--split-file", str(two)]) == 2
    assert f"--split-file {two} lists 2 frames but the disparities and {gt_path} hold 1" in capsys.readouterr().err
    assert main([*argv, "--split-file", str(exported)]) == 0


def test_gt_without_lines_must_have_each_images_size(checkpoints, kitti_sample, tmp_path, capsys):
    root = make_kitti_drive(kitti_sample, tmp_path / "kitti", frames=(1, 2))
    smaller = root / FOLDER / "image_02/data/0000000002.jpg"
    cv2.imwrite(str(smaller), cv2.resize(cv2.imread(str(smaller)), (1224, 370)))
    split = write_lines(tmp_path / "test_files.txt", [f"{FOLDER} 1 l", f"{FOLDER} 2 l"])
    gt_path = tmp_path / "gt_depths.npz"
    maps = np.empty(2, dtype=object)
    maps[0], maps[1] = np.full((376, 1241), 10.0, np.float32), np.full((376, 1241), 10.0, np.float32)
    np.savez_compressed(gt_path, data=maps)  # monodepth2's format: no 'lines'
    code = main(["evaluate", "--checkpoint", str(checkpoints["MS"]), "--data-path", str(root), "--split-file", str(split),
                 "--gt", str(gt_path), "--num-workers", "0", "--device", "cpu"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"mldanet evaluate: error: {gt_path}: ground-truth map 2 is 1241×376 but its image {smaller} (line 2 of "
        f"{split}: '{FOLDER} 2 l') is 1224×370: the ground truth is of other frames; export it from this split "
        "(mldanet export-gt)"
    )


def test_object_array_disparities_get_our_message(tmp_path, capsys):
    gt_path, _ = write_inputs(tmp_path, [np.ones((4, 4), np.float32)], [np.ones((4, 4), np.float32)])
    disps = tmp_path / "objects.npy"
    objects = np.empty(1, dtype=object)
    objects[0] = RunsACommand(tmp_path / "pwned")
    np.save(disps, objects, allow_pickle=True)
    assert main(["evaluate", "--pred-disps", str(disps), "--gt", str(gt_path), "--scaling", "stereo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"mldanet evaluate: error: disparity file {disps} holds Python objects (an object array), not numbers: it was "
        "refused unread, since unpickling could run code; save a numeric array with numpy.save"
    )
    assert "allow_pickle" not in err and not (tmp_path / "pwned").exists()


def test_evaluate_checks_paths_before_evaluating(checkpoints, kitti_sample, split_file, tmp_path, capsys, monkeypatch):
    gt = np.zeros((20, 60), np.float32)
    gt[8:19, 2:57] = 10.0
    gt_path, disp_path = write_inputs(tmp_path, [gt], [np.full((10, 30), 0.45, np.float32)])
    a_file = write_lines(tmp_path / "a_file.txt", ["x"])

    def evaluate(*argv):
        code = main(["evaluate", *argv])
        captured = capsys.readouterr()
        return code, captured.err.strip(), captured.out

    pred = ["--pred-disps", str(disp_path), "--gt", str(gt_path), "--scaling", "stereo"]
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    (read_only / "result.json").write_text("{}")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: read_only not in Path(path).parents and Path(path) != read_only
                        and real_access(path, mode))
    json_out = read_only / "result.json"
    assert evaluate(*pred, "--json", str(json_out)) == (
        2, f"mldanet evaluate: error: cannot write --json file {json_out}: the file is read-only", ""
    )
    assert evaluate(*pred, "--json", str(read_only / "new.json")) == (
        2, f"mldanet evaluate: error: cannot write --json file {read_only / 'new.json'}: {read_only} is not writable", ""
    )
    assert evaluate(*pred, "--json", str(tmp_path)) == (
        2, f"mldanet evaluate: error: --json file {tmp_path} is a folder, not a file", ""
    )
    assert evaluate("--pred-disps", str(disp_path), "--gt", str(tmp_path), "--scaling", "stereo") == (
        2, f"mldanet evaluate: error: ground-truth file {tmp_path} is a folder, not a file", ""
    )
    assert evaluate("--pred-disps", str(tmp_path), "--gt", str(gt_path), "--scaling", "stereo") == (
        2, f"mldanet evaluate: error: disparity file {tmp_path} is a folder, not a file", ""
    )
    checkpoint = ["--checkpoint", str(checkpoints["MS"]), "--split-file", str(split_file)]
    assert evaluate(*checkpoint, "--data-path", str(a_file)) == (
        2, f"mldanet evaluate: error: data path {a_file} is a file, not a folder", ""
    )
    assert evaluate(*checkpoint, "--data-path", str(kitti_sample), "--benchmark-dir", str(a_file)) == (
        2, f"mldanet evaluate: error: benchmark directory {a_file} is a file, not a folder", ""
    )
