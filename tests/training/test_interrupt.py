"""Ctrl-C and SIGTERM stop a run after the current step with last.pt written (exit code 130)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from mldanet.cli import main
from mldanet.config import save_config
from mldanet.models.checkpoint import load_checkpoint
from mldanet.data.loader import ignore_interrupts_in_worker
from mldanet.training.hooks import SignalStop
from mldanet.training.trainer import Trainer

from .configs import small_config, train_argv


def signal_after_step(monkeypatch, signum: int, step: int) -> None:
    """Send ``signum`` to this process at the end of training step ``step`` (1-based)."""
    real = Trainer.train_step
    calls = []

    def step_then_signal(self, batch, epoch):
        outcome = real(self, batch, epoch)
        calls.append(1)
        if len(calls) == step:
            os.kill(os.getpid(), signum)
        return outcome

    monkeypatch.setattr(Trainer, "train_step", step_then_signal)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_after_the_step_with_last_pt_written_and_the_run_resumes(kitti_fixture, tmp_path, capfd, monkeypatch, signum):
    out = tmp_path / "run"
    last = out / "checkpoints" / "last.pt"
    name = signal.Signals(signum).name
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal_after_step(monkeypatch, signum, 2)
    # No checkpoint is due before step 100: the one found is the stop's.
    assert main(train_argv(kitti_fixture, out, "--max-steps", "4", "--checkpoint-every", "100")) == 130
    err = capfd.readouterr().err
    assert f"mldanet train: {name}: stopping after this step and writing {last}" in err
    assert err.strip().splitlines()[-1] == (
        f"mldanet train: interrupted by {name} after step 2; checkpoint saved to {last}; "
        f"continue with: mldanet train --resume {out}"
    )
    assert "Traceback" not in err
    assert load_checkpoint(last)["step"] == 2
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the previous handlers are back
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert f"resumed at step 2 from {last}" in capfd.readouterr().out
    assert load_checkpoint(last)["step"] == 4


def test_a_sigint_during_a_checkpoint_write_waits_for_the_write(kitti_fixture, tmp_path, capfd, monkeypatch):
    out = tmp_path / "run"
    real_save = torch.save
    calls = []

    def save_with_a_sigint_inside(obj, handle):
        calls.append(1)
        if len(calls) == 2:  # the checkpoint of step 2: the signal arrives as the write starts
            os.kill(os.getpid(), signal.SIGINT)
        return real_save(obj, handle)

    monkeypatch.setattr(torch, "save", save_with_a_sigint_inside)
    assert main(train_argv(kitti_fixture, out, "--max-steps", "4", "--checkpoint-every", "1")) == 130
    monkeypatch.undo()
    err = capfd.readouterr().err
    last = out / "checkpoints" / "last.pt"
    assert "Traceback" not in err and "unexpected pos" not in err
    assert err.strip().splitlines()[-1].startswith(f"mldanet train: interrupted by SIGINT after step 2; checkpoint saved to {last}")
    assert len(calls) == 2  # stopped at once: the checkpoint written when the signal came is the stop's
    assert load_checkpoint(last)["step"] == 2
    assert not list(last.parent.glob(".*.tmp"))


def test_stop_handlers_are_installed_only_in_the_main_thread():
    found = []
    worker = threading.Thread(target=lambda: found.append(SignalStop(Path("last.pt"), True, False).install_handlers()))
    worker.start()
    worker.join()
    assert found == [{}]


def test_loader_workers_ignore_sigint_and_die_of_sigterm():
    """Under fork the workers would inherit the flag-setting handlers (SIGTERM would then not stop
    a stuck worker); under spawn they would die of a Ctrl-C and break the next fetch."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGTERM, lambda *_: None)
        ignore_interrupts_in_worker(0)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_ctrl_c_to_the_process_group_of_a_real_run_with_loader_workers(kitti_fixture, tmp_path):
    """What a terminal does on Ctrl-C: SIGINT to the training process and its DataLoader workers."""
    config = small_config(
        kitti_fixture, tmp_path / "run", mode="S", checkpoint_every=1, loss={"use_hints": False},
        epochs=100, max_steps=400,
    )
    config.data.num_workers = 1
    save_config(config, tmp_path / "config.yaml")
    command = [sys.executable, "-m", "mldanet", "train", "--config", str(tmp_path / "config.yaml"), "--no-progress"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 130, output[-4000:]
    final = output.strip().splitlines()[-1]
    assert final.startswith("mldanet train: interrupted by SIGINT after step "), output[-4000:]
    step = int(final.split("after step ")[1].split(";")[0])
    assert 1 <= step < 400 and load_checkpoint(last)["step"] == step
    assert "Traceback" not in output and "DataLoader worker" not in output


def test_under_torchrun_a_signal_to_one_rank_stops_every_rank_after_the_same_step(kitti_fixture, tmp_path):
    """The flag travels in the all-reduce each step makes: rank 0, which got no signal, stops with rank 1."""
    config = small_config(kitti_fixture, tmp_path / "run", mode="S", checkpoint_every=100, loss={"use_hints": False},
                          batch_size=1, epochs=4)
    save_config(config, tmp_path / "config.yaml")
    worker = Path(__file__).with_name("ddp_stop_worker.py")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
               str(tmp_path / "config.yaml"), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    stopped = [(tmp_path / f"stopped_rank{rank}.txt").read_text() for rank in (0, 1)]
    assert stopped == ["2 a stop signal on another rank", "2 SIGINT"]
    assert load_checkpoint(tmp_path / "run")["step"] == 2
