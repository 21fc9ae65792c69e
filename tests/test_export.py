"""``mldanet export-onnx``: the ONNX graph reproduces PyTorch (onnxruntime, max |diff| ≤ 1e-4)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from mldanet import export
from mldanet.cli import main
from tests.checkpoints import write_checkpoint


def run_onnx(path: Path, image: torch.Tensor) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": image.numpy()})


def test_mlda_export_matches_pytorch(tmp_path, capsys):
    checkpoint, net = write_checkpoint(tmp_path / "mlda.pt", "mlda")
    out = tmp_path / "model.onnx"

    assert main(["export-onnx", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    reported = float(re.search(r"max \|diff\| = (\S+)", printed).group(1))
    assert reported <= 1e-4
    model = onnx.load(str(out))
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["disp_0"]
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["stereo_scale"] == "5.4" and metadata["input_size"] == "64x96"
    assert (float(metadata["min_depth"]), float(metadata["max_depth"])) == (0.1, 100.0)
    # An input and a batch size the export never saw.
    image = torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = net(image)[0].numpy()
    (actual,) = run_onnx(out, image)
    assert actual.shape == (3, 1, 64, 96)
    assert np.max(np.abs(actual - expected)) <= 1e-4


def test_all_scales_and_a_failed_check(tmp_path, monkeypatch, capsys):
    checkpoint, net = write_checkpoint(tmp_path / "baseline.pt", "baseline", height=64, width=128)
    out = tmp_path / "all.onnx"
    difference = export.export_onnx(checkpoint, out, height=96, width=96, all_scales=True)
    assert difference <= 1e-4
    image = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        expected = net(image)
    outputs = run_onnx(out, image)
    assert [o.name for o in onnx.load(str(out)).graph.output] == ["disp_0", "disp_1", "disp_2", "disp_3"]
    for scale, actual in enumerate(outputs):
        assert actual.shape == (1, 1, 96 >> scale, 96 >> scale)
        assert np.max(np.abs(actual - expected[scale].numpy())) <= 1e-4

    monkeypatch.setattr(export, "max_onnx_difference", lambda *args: 0.5)
    small = ["--height", "32", "--width", "32"]
    assert main(["export-onnx", "--checkpoint", str(checkpoint), "--out", str(out), *small]) == 1
    assert "check FAILED" in capsys.readouterr().err


def test_size_must_be_a_multiple_of_32(tmp_path, capsys):
    checkpoint, _ = write_checkpoint(tmp_path / "baseline.pt", "baseline")
    assert main(["export-onnx", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.onnx"), "--width", "100"]) == 2
    assert "--width 100 must be a positive multiple of 32" in capsys.readouterr().err


def test_an_output_that_is_a_folder_is_refused_before_any_work(tmp_path, capsys):
    assert main(["export-onnx", "--checkpoint", str(tmp_path / "never-read.pt"), "--out", str(tmp_path)]) == 2
    assert f"output file --out {tmp_path} is a folder, not a file" in capsys.readouterr().err
