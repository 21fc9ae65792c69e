"""Faults a long run meets: a killed process, a failing disk, non-finite losses, bad input."""

from __future__ import annotations

import io
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mldanet.cli import main
from mldanet.config import save_config
from mldanet.models.checkpoint import load_checkpoint
from mldanet.training.datasets import build_datasets
from mldanet.training.trainer import NonFiniteLossError, Trainer
from mldanet.types import LossResult
from tests.checkpoints import write_checkpoint

from .configs import fixture_flags, small_config, state_dicts

# One thread in every training process, so that they compute bit for bit alike.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def train_subprocess(config_path: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "mldanet", "train", "--config", str(config_path), "--no-progress", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=SUBPROCESS_ENV)


def finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=1800)
    assert process.returncode == 0, output[-4000:]


def test_sigkill_then_resume_ends_identical_to_an_uninterrupted_run(kitti_fixture, tmp_path):
    # 4 steps per epoch: the 5 steps cross an epoch boundary; a checkpoint after every step.
    def config_file(name: str) -> Path:
        config = small_config(kitti_fixture, tmp_path / name, mode="S", max_steps=5, checkpoint_every=1)
        save_config(config, tmp_path / f"{name}.yaml")
        return tmp_path / f"{name}.yaml"

    straight = train_subprocess(config_file("straight"))
    finish(straight)

    killed = train_subprocess(config_file("killed"))
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    versions: set[tuple[int, int]] = set()
    while len(versions) < 2 and killed.poll() is None:  # kill once the second checkpoint is in place
        if last.exists():
            stat = last.stat()
            versions.add((stat.st_ino, stat.st_mtime_ns))
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    output, _ = killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL, output[-4000:]
    at_kill = load_checkpoint(last)["step"]
    assert 2 <= at_kill < 5, f"the run was killed after step {at_kill}"

    finish(train_subprocess(tmp_path / "killed.yaml", "--resume", str(tmp_path / "killed")))
    assert not list(last.parent.glob(".*.tmp"))  # a write the kill cut short is cleared away
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "killed")
    assert a["step"] == b["step"] == 5 and a["epoch"] == b["epoch"] == 1
    for net, state in state_dicts(a).items():
        different = [k for k in state if not torch.equal(state[k], state_dicts(b)[net][k])]
        assert not different, f"{net} differs after a kill at step {at_kill} and a resume: {different[:3]}"


def test_checkpoint_write_failing_half_way_keeps_the_previous_one(kitti_fixture, tmp_path, monkeypatch):
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", max_steps=3, checkpoint_every=1)
    real_save = torch.save
    calls = []

    def disk_full_on_the_second_write(obj, handle):
        calls.append(1)
        if len(calls) < 2:
            return real_save(obj, handle)
        buffer = io.BytesIO()
        real_save(obj, buffer)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full_on_the_second_write)
    checkpoint = tmp_path / "run" / "checkpoints" / "last.pt"
    with pytest.raises(OSError, match=f"no space left on the disk to write checkpoint {checkpoint}"):
        Trainer(config, build_datasets(config)[0], progress=False).train()
    monkeypatch.undo()
    folder = tmp_path / "run" / "checkpoints"
    assert load_checkpoint(folder / "last.pt")["step"] == 1
    # No half-written file left; healthy.pt is step 1's last.pt, kept while step 2's was being written.
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "healthy.pt", "last.pt"]
    assert (folder / "healthy.pt").samefile(folder / "last.pt")
    state = Trainer(config, build_datasets(config)[0], resume=folder / "last.pt", progress=False).train()
    assert state.step == 3


def nan_on_calls(monkeypatch, calls: set[int] | None) -> None:
    """Make the loss of the given ``compute_losses`` calls (1-based; None: every call) NaN."""
    import mldanet.self_supervised as trainer_module

    real = trainer_module.compute_losses
    count = []

    def poisoned(*args, **kwargs):
        result = real(*args, **kwargs)
        count.append(1)
        if calls is None or len(count) in calls:
            return LossResult(total=result.total * math.nan, terms=result.terms)
        return result

    monkeypatch.setattr(trainer_module, "compute_losses", poisoned)


def test_a_non_finite_loss_skips_the_update_and_is_counted(kitti_fixture, tmp_path, monkeypatch, capsys):
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", max_steps=3, checkpoint_every=100)
    nan_on_calls(monkeypatch, {2})
    trainer = Trainer(config, build_datasets(config)[0], progress=False)
    state = trainer.train()
    assert state.step == 3 and state.skipped_steps == 1 and state.bad_steps == 0
    assert [h["train/skipped_steps"] for h in state.history] == [0.0, 1.0, 1.0]
    assert math.isnan(state.history[1]["loss/total"])
    assert "step 2: non-finite loss (nan), update skipped (1 skipped so far)" in capsys.readouterr().out
    # Two updates, not three: the skipped step left Adam's state alone.
    assert {int(s["step"]) for s in trainer.optimizer.state_dict()["state"].values()} == {2}
    assert load_checkpoint(tmp_path / "run")["skipped_steps"] == 1


def test_consecutive_non_finite_losses_stop_the_run_after_a_checkpoint(kitti_fixture, tmp_path, monkeypatch, capsys):
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", max_steps=4, checkpoint_every=100)
    save_config(config, tmp_path / "config.yaml")
    initial = Trainer(config, build_datasets(config)[0], progress=False).depth_net.state_dict()
    nan_on_calls(monkeypatch, None)
    code = main(["train", "--config", str(tmp_path / "config.yaml"), "--set", "train.max_bad_steps=2", "--no-progress"])
    assert code == 1
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        f"mldanet train: stopped: 2 consecutive non-finite losses at step 2 (2 skipped in all); checkpoint saved to "
        f"{last}. Lower the learning rate or check the data (hints, images) of the last batches."
    )
    checkpoint = load_checkpoint(last)
    assert checkpoint["step"] == 2 and checkpoint["skipped_steps"] == 2 and checkpoint["bad_steps"] == 2
    assert all(torch.equal(v, initial[k]) for k, v in checkpoint["depth_net"].items())


def nan_gradients_on_steps(trainer: Trainer, steps: set[int] | None) -> None:
    """Make the gradient of one depth-network weight NaN in the given backward passes (1-based; None: all)."""
    count = []

    def poison(grad):
        count.append(1)
        return grad * math.nan if steps is None or len(count) in steps else grad

    next(trainer.depth_net.parameters()).register_hook(poison)


def test_a_non_finite_gradient_norm_skips_the_update_and_is_counted(kitti_fixture, tmp_path, capsys):
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", max_steps=3, checkpoint_every=100)
    trainer = Trainer(config, build_datasets(config)[0], progress=False)
    nan_gradients_on_steps(trainer, {2})
    state = trainer.train()
    assert state.step == 3 and state.skipped_steps == 1 and state.bad_steps == 0
    assert [h["train/skipped_steps"] for h in state.history] == [0.0, 1.0, 1.0]
    norms = [h["train/grad_norm"] for h in state.history]
    assert math.isfinite(norms[0]) and math.isnan(norms[1]) and math.isfinite(norms[2])
    loss = state.history[1]["loss/total"]
    assert math.isfinite(loss)
    assert f"step 2: non-finite gradient norm (nan, loss {loss:.4f}), update skipped (1 skipped so far)" in capsys.readouterr().out
    assert {int(s["step"]) for s in trainer.optimizer.state_dict()["state"].values()} == {2}


def test_consecutive_non_finite_gradient_norms_stop_the_run(kitti_fixture, tmp_path):
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", max_steps=4, checkpoint_every=100, train={"max_bad_steps": 2})
    trainer = Trainer(config, build_datasets(config)[0], progress=False)
    initial = {k: v.clone() for k, v in trainer.depth_net.state_dict().items()}
    nan_gradients_on_steps(trainer, None)
    with pytest.raises(NonFiniteLossError, match=r"^2 consecutive non-finite gradient norms at step 2 \(2 skipped in all\)"):
        trainer.train()
    # Neither the weights nor the batch-norm statistics moved.
    assert all(torch.equal(v, initial[k]) for k, v in load_checkpoint(tmp_path / "run")["depth_net"].items())


def test_resume_auto_and_torchrun_restarts_continue_from_last_pt(kitti_fixture, tmp_path, monkeypatch, capsys):
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", max_steps=2, checkpoint_every=1)
    save_config(config, tmp_path / "config.yaml")
    argv = ["train", "--config", str(tmp_path / "config.yaml"), "--no-progress"]
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    assert main([*argv, "--resume", "auto"]) == 0  # nothing to resume: starts afresh
    assert "resumed" not in capsys.readouterr().out
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")  # what torchrun sets in restarted workers
    assert main([*argv, "--max-steps", "3"]) == 0
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert f"resumed at step 2 from {last}" in capsys.readouterr().out
    checkpoint = load_checkpoint(last)
    assert checkpoint["step"] == 3
    assert [h["step"] for h in checkpoint["history"]] == [1.0, 2.0, 3.0]


def truncated_image_tree(fixture, root: Path) -> dict:
    """A copy of the fixture (without scans) whose frame 1 left image is cut short."""
    data = root / "kitti"
    shutil.copytree(fixture["data"], data, ignore=shutil.ignore_patterns("*.bin"))
    image = next(data.glob("*/*/image_02/data/0000000001.jpg"))
    image.write_bytes(image.read_bytes()[:3000])
    return {**fixture, "data": data, "image": image}


def bad_input_case(case: str, fixture, tmp_path: Path) -> tuple[list[str], str]:
    """(extra `mldanet train` arguments, the expected one-line error) for each kind of bad input."""
    line = "2011_10_03/2011_10_03_drive_0000_sync 1 l"
    split = tmp_path / "train_files.txt"
    if case == "empty split file":
        split.write_text("\n\n")
        return ["--split-file", str(split)], f"split file is empty: {split}"
    if case == "absent drive":
        split.write_text(f"{line}\n2011_10_03/2011_10_03_drive_0099_sync 3 r\n")
        drive = fixture["data"] / "2011_10_03/2011_10_03_drive_0099_sync"
        return ["--split-file", str(split)], f"drive folder {drive} not found (needed by line 2 of {split}"
    if case == "missing hint":
        (tmp_path / "hints").mkdir()
        hint = tmp_path / "hints/2011_10_03/2011_10_03_drive_0000_sync/image_02/0000000001.npy"
        split.write_text(f"{line}\n")
        return ["--split-file", str(split), "--hints-dir", str(tmp_path / "hints")], f"{hint} not found (needed by line 1 of {split}"
    if case == "truncated image in a loader worker":
        tree = truncated_image_tree(fixture, tmp_path)
        split.write_text(f"{line}\n")
        args = ["--split-file", str(split), "--data-path", str(tree["data"]), "--batch-size", "1", "--num-workers", "1"]
        return args, f"truncated JPEG (no end-of-image marker): {tree['image']}"
    checkpoint, _ = write_checkpoint(tmp_path / "ckpt.pt", "baseline", height=64, width=128)
    if case == "resume with the other backbone":
        return ["--resume", str(checkpoint), "--backbone", "resnet50"], (
            f"checkpoint {checkpoint} was trained with another network (backbone 'resnet18' -> 'resnet50')"
        )
    if case == "resume with another number of processes":
        payload = torch.load(checkpoint, weights_only=True)
        torch.save({**payload, "world_size": 2}, checkpoint)
        return ["--resume", str(checkpoint)], f"checkpoint {checkpoint} was written by a run of 2 processes, this one has 1"
    assert case == "malicious checkpoint"
    payload = torch.load(checkpoint, weights_only=True)
    torch.save({**payload, "hook": RunsACommand(tmp_path / "pwned")}, checkpoint)
    return ["--resume", str(checkpoint)], f"checkpoint {checkpoint} was refused unread by weights-only loading"


class RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("case", [
    "empty split file", "absent drive", "missing hint", "truncated image in a loader worker",
    "resume with the other backbone", "resume with another number of processes", "malicious checkpoint",
])
def test_bad_training_input_is_one_line_naming_it(kitti_fixture, tmp_path, capsys, case):
    extra, message = bad_input_case(case, kitti_fixture, tmp_path)
    argv = ["train", *fixture_flags(kitti_fixture), "--weights-init", "scratch", "--height", "64", "--width", "128",
            "--batch-size", "2", "--num-workers", "0", "--mode", "S", "--set", "train.validate=false", "--out", str(tmp_path / "out"),
            "--no-progress", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"mldanet train: error: {message}"), err
    assert not (tmp_path / "pwned").exists()
