"""``train --profile``: a trace of the configured steps, nothing when off, bad counts refused."""

import json

import pytest
import torch

from mldanet.cli import main
from mldanet.training.profiling import SKIPPED_STEPS, WARMUP_STEPS, StepProfiler

from .configs import fixture_flags


def test_the_profiler_records_exactly_the_requested_steps(tmp_path):
    profiler = StepProfiler(tmp_path, steps=2)
    a = torch.rand(64, 64)
    for step in range(SKIPPED_STEPS + WARMUP_STEPS + 2 + 3):
        with torch.profiler.record_function(f"training_step_{step}"):
            a = torch.mm(a, a).clamp(0, 1)
        profiler.step()
    assert not profiler.active  # it stops by itself after the window
    trace = json.loads((tmp_path / "profile" / "trace.json").read_text())
    recorded = {e["name"] for e in trace["traceEvents"] if e.get("name", "").startswith("training_step_")}
    first = SKIPPED_STEPS + WARMUP_STEPS
    assert recorded == {f"training_step_{first}", f"training_step_{first + 1}"}
    assert "aten::mm" in (tmp_path / "profile" / "operators.txt").read_text()


def test_profiling_off_writes_nothing(tmp_path):
    profiler = StepProfiler(tmp_path, steps=0)
    profiler.step()
    profiler.close()
    assert not profiler.active and not (tmp_path / "profile").exists()


def test_a_negative_step_count_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--profile -1"):
        StepProfiler(tmp_path, steps=-1)


def test_train_profile_flag_writes_a_trace(kitti_fixture, tmp_path):
    out = tmp_path / "run"
    code = main([
        "train", "--mode", "S", "--weights-init", "scratch", *fixture_flags(kitti_fixture), "--height", "64", "--width", "128",
        "--batch-size", "2", "--num-workers", "0", "--max-steps", str(SKIPPED_STEPS + WARMUP_STEPS + 1),
        "--out", str(out), "--set", "train.validate=false", "--set", "model.variant=baseline", "--no-progress", "--profile", "1",
    ])
    assert code == 0
    assert json.loads((out / "profile" / "trace.json").read_text())["traceEvents"]
    assert "convolution" in (out / "profile" / "operators.txt").read_text()
