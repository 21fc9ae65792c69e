"""A dataset from outside the package: ``--dataset MODULE:CLASS`` trains and evaluates through the CLI.

The module is written into a temporary folder put on ``sys.path``, as a user's own package on
PYTHONPATH would be; its class implements the three required hooks and ground truth, and reads
a layout the package knows nothing of (``<root>/<sequence>/frame_<n>.png``, lines ``<sequence> <n>``).
"""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest
import torch

from mldanet import cli
from mldanet.data.base import DATASETS, dataset_class

MODULE = '''
import numpy as np

from mldanet.data.base import FrameDataset
from mldanet.data.folder import FolderDataset


class Sequences(FolderDataset):
    """The folder layout under the user's own name."""


class Strips(FrameDataset):
    """Frames <root>/<sequence>/frame_<n>.png; a split line is '<sequence> <n>'; everything 10 m away."""

    def parse_line(self, line, source, lineno):
        sequence, number = line.split()
        return sequence, int(number), "l"

    def frame_path(self, item, frame_id):
        return self.root / item[0] / f"frame_{item[1] + self.offset(frame_id)}.png"

    def normalised_K(self, item):
        return np.array([[0.6, 0, 0.5, 0], [0, 1.2, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    def ground_truth_files(self, item):
        return [self.frame_path(item, 0)]

    def ground_truth(self, item):
        return np.full((32, 64), 10.0, np.float32)


NOT_A_DATASET = 3


class NoFrames(FrameDataset):
    """Forgets two of the three required hooks."""

    def parse_line(self, line, source, lineno):
        return "seq", 0, "l"
'''

BROKEN_MODULE = "raise RuntimeError('this module needs a GPU')\n"


@pytest.fixture
def strips(tmp_path, monkeypatch):
    """The module ``strips_ext`` on sys.path, and a root with one 8-frame sequence and split 'mine'."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "strips_ext.py").write_text(MODULE)
    (tmp_path / "code" / "broken_ext.py").write_text(BROKEN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    monkeypatch.delitem(sys.modules, "strips_ext", raising=False)
    texture = np.random.default_rng(0).integers(0, 255, (32, 96, 3), dtype=np.uint8)
    root = tmp_path / "data"
    (root / "seq").mkdir(parents=True)
    for n in range(8):
        cv2.imwrite(str(root / "seq" / f"frame_{n}.png"), np.roll(texture, 2 * n, axis=1)[:, :64])
    splits = tmp_path / "splits" / "mine"
    splits.mkdir(parents=True)
    (splits / "train_files.txt").write_text("".join(f"seq {n}\n" for n in range(1, 6)))
    (splits / "test_files.txt").write_text("seq 6\n")
    yield root, tmp_path / "splits"
    sys.modules.pop("strips_ext", None)
    sys.modules.pop("broken_ext", None)


def test_a_dataset_in_the_users_module_trains_and_evaluates(strips, tmp_path, capsys):
    root, splits = strips
    run = tmp_path / "run"
    spec = "strips_ext:Strips"
    assert cli.main([
        "train", "--dataset", spec, "--data-path", str(root), "--splits-dir", str(splits), "--split", "mine",
        "--weights-init", "scratch", "--height", "32", "--width", "64", "--batch-size", "2", "--num-workers", "0",
        "--mode", "M", "--set", "model.variant=baseline", "--set", "train.validate=false", "--max-steps", "1",
        "--out", str(run), "--no-progress",
    ]) == 0
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 1 and np.isfinite(state["history"][-1]["loss/total"])
    assert f"dataset: {spec}" in (run / "config.yaml").read_text()  # the run names the class, to find it again
    assert dataset_class(spec).name == spec and spec not in DATASETS  # named by its spec, not registered

    capsys.readouterr()
    scored = ["evaluate", "--checkpoint", str(run), "--data-path", str(root), "--splits-dir", str(splits),
              "--split", "mine", "--num-workers", "0", "--json", str(tmp_path / "eval.json")]
    # the checkpoint's config names the module, but only the user's own --dataset imports it
    assert cli.main(scored) == 2
    assert f"pass --dataset {spec} to import it" in capsys.readouterr().err
    assert cli.main([*scored, "--dataset", spec]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    # the test list's one frame, scored against the class's ground truth (no Eigen crop: not KITTI)
    assert result["count"] == 1 and result["dataset"] == spec and result["eigen_crop"] is False
    assert result["scaling"] == "median" and 0 <= result["metrics"]["abs_rel"] < 1


@pytest.mark.parametrize(("spec", "message"), [
    ("absent_module_xyz:Strips", "data.dataset='absent_module_xyz:Strips': cannot import module 'absent_module_xyz' "
                                 "(is it on PYTHONPATH?)"),
    ("strips_ext:Missing", "data.dataset='strips_ext:Missing': module 'strips_ext' has no 'Missing'"),
    ("strips_ext:NOT_A_DATASET", "data.dataset='strips_ext:NOT_A_DATASET': 'NOT_A_DATASET' is not a subclass of "
                                 "mldanet.data.base.FrameDataset"),
    ("strips_ext:", "data.dataset='strips_ext:' is not MODULE:CLASS (such as mypkg.mymodule:MyDataset)"),
    ("broken_ext:Strips", "data.dataset='broken_ext:Strips': importing module 'broken_ext' failed: RuntimeError: "
                          "this module needs a GPU"),
    ("strips_ext:NoFrames", "data.dataset='strips_ext:NoFrames': NoFrames does not define the required hook(s) "
                            'frame_path, normalised_K (docs/ARCHITECTURE.md, "Dataset hooks")'),
])
def test_a_wrong_module_or_class_is_one_line_naming_it(strips, tmp_path, capsys, spec, message):
    root, _ = strips
    for argv in (
        ["train", "--dataset", spec, "--data-path", str(root), "--out", str(tmp_path / "run")],
        ["hints", "--dataset", spec, "--data-path", str(root), "--split", "mine", "--out", str(tmp_path / "hints")],
    ):
        assert cli.main(argv) == 2
        assert capsys.readouterr().err.strip() == f"mldanet {argv[0]}: error: {message}"


def test_synth_writes_the_layout_a_users_dataset_names(strips, tmp_path, capsys):
    out = tmp_path / "drives"
    assert cli.main(["synth", "--layout", "strips_ext:Sequences", "--out", str(out), "--drives", "1", "--frames", "3",
                     "--width", "64", "--height", "32", "--workers", "1", "--no-progress"]) == 0
    # a FolderDataset subclass names the folder layout: frames, right/ images, depth/ maps, camera.yaml
    assert sorted(p.name for p in (out / "drive_0001" / "depth").iterdir()) == [f"{i:010d}.npy" for i in range(3)]
    assert (out / "drive_0001" / "right" / "0000000002.jpg").is_file() and (out / "camera.yaml").is_file()
    # and its hints, where the inherited hint_name says: the one frame with both neighbours
    assert cli.main(["hints", "--dataset", "strips_ext:Sequences", "--data-path", str(out), "--out", str(tmp_path / "h"),
                     "--width", "64", "--height", "32", "--block-sizes", "1", "--num-disparities", "16",
                     "--workers", "1"]) == 0
    assert [p.relative_to(tmp_path / "h").as_posix() for p in (tmp_path / "h").rglob("*.npy")] == ["drive_0001/0000000001.npy"]
    capsys.readouterr()
    assert cli.main(["hints", "--dataset", "strips_ext:Strips", "--data-path", str(out), "--split", "x",
                     "--out", str(tmp_path / "h")]) == 2
    assert capsys.readouterr().err.strip() == (
        "mldanet hints: error: --dataset strips_ext:Strips: the strips_ext:Strips dataset has no depth hints "
        "(its class defines no hint_name)"
    )
    assert cli.main(["synth", "--layout", "strips_ext:Strips", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        "mldanet synth: error: --layout strips_ext:Strips: the strips_ext:Strips dataset has no synthetic layout "
        "(its synth_layout is '', not one of kitti, folder)"
    )
    assert not (tmp_path / "x").exists()
