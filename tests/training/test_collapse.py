"""The collapse monitor: its statistics, its streak, and a forced collapse in a real training run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import mldanet.self_supervised as self_supervised
import mldanet.training.checkpoint_keeper as keeper_module
from mldanet.cli import main
from mldanet.config import save_config
from mldanet.models.checkpoint import load_checkpoint
from mldanet.training.collapse import CollapseMonitor, disparity_variation, map_statistics
from mldanet.training.datasets import build_datasets
from mldanet.training.trainer import CollapseError, Trainer

from .configs import small_config


def reference_variation(disparity: np.ndarray) -> float:
    """float64: per-image population std / mean, averaged over the batch."""
    flat = disparity.astype(np.float64).reshape(len(disparity), -1)
    return float(np.mean(flat.std(axis=1) / flat.mean(axis=1)))


def test_variation_matches_a_float64_reference():
    generator = torch.Generator().manual_seed(3)
    for scale in (1.0, 1e-3, 0.01):
        # Sigmoid disparities around different levels, some nearly flat.
        disparity = torch.sigmoid(torch.randn(3, 1, 24, 40, generator=generator) * scale + torch.tensor([-3.0, 0.0, 2.0])[:, None, None, None])
        assert disparity_variation(disparity).item() == pytest.approx(reference_variation(disparity.numpy()), rel=1e-5)


def test_a_constant_map_is_flat_and_a_structured_one_is_not():
    monitor = CollapseMonitor(threshold=1e-3, patience=3)
    for value in (0.3, 1.0, 0.0):  # 0.0: a sigmoid saturated at 0 reads 0, not 0/0
        constant = torch.full((2, 1, 64, 96), value)
        assert disparity_variation(constant).item() == 0.0
        assert monitor.is_flat(disparity_variation(constant).item())
    # One flat image and one with a vertical ramp (near at the bottom, as a road): the batch is not flat.
    ramp = torch.linspace(0.05, 0.5, 64)[:, None].expand(64, 96)
    structured = torch.stack([torch.full((64, 96), 0.2), ramp])[:, None]
    variation = disparity_variation(structured).item()
    assert variation == pytest.approx(reference_variation(structured.numpy()), rel=1e-5)
    assert variation == pytest.approx(0.5 * ramp.double().std(correction=0).item() / ramp.double().mean().item(), rel=1e-5)
    assert not monitor.is_flat(variation)
    assert not monitor.is_flat(math.nan)


def test_collapsed_only_after_patience_flat_steps_and_reported_once():
    monitor = CollapseMonitor(threshold=1e-3, patience=3)
    flat, healthy = 1e-7, 2e-2
    reports = [monitor.update(v, monitor.is_flat(v)) for v in (flat, flat, healthy, flat, flat)]
    assert reports == [False] * 5 and monitor.streak == 2  # the healthy step reset the streak
    assert monitor.update(flat, True) and monitor.streak == 3 and monitor.collapsed
    assert not monitor.update(flat, True) and monitor.streak == 4  # reported once per collapse
    assert not monitor.update(healthy, False) and monitor.streak == 0 and not monitor.collapsed
    assert [monitor.update(flat, True) for _ in range(3)] == [False, False, True]  # a new collapse: reported again
    assert monitor.variation == flat


def test_a_resumed_monitor_continues_its_streak():
    monitor = CollapseMonitor(threshold=1e-3, patience=3)
    for _ in range(4):
        monitor.update(0.0, True)
    assert monitor.state_dict() == {"streak": 4, "variation": 0.0}
    resumed = CollapseMonitor(threshold=1e-3, patience=3)
    resumed.load_state_dict(monitor.state_dict())
    assert resumed.update(0.0, True) and resumed.streak == 5  # still collapsed: said again by the new process
    almost = CollapseMonitor(threshold=1e-3, patience=3)
    almost.load_state_dict({"streak": 2, "variation": 1e-5})
    assert almost.update(1e-5, True) and almost.streak == 3


def test_gate_statistics_on_hand_built_maps():
    level1 = torch.tensor([0.0, 5e-4, 0.002, 0.5, 0.99, 0.9995, 1.0, 0.25]).reshape(2, 1, 2, 2)
    level2 = torch.zeros(2, 1, 1, 1)
    stats = map_statistics(torch.full((2, 1, 4, 4), 0.5), {1: level1, 2: level2})
    assert stats.gate_saturated[1].item() == 0.5  # 0, 5e-4, 0.9995 and 1 of the 8
    assert stats.gate_mean[1].item() == pytest.approx((0.0 + 5e-4 + 0.002 + 0.5 + 0.99 + 0.9995 + 1.0 + 0.25) / 8, rel=1e-6)
    assert stats.gate_saturated[2].item() == 1.0 and stats.gate_mean[2].item() == 0.0
    assert sorted(stats.scalars()) == [
        "collapse/disp_variation", "gates/1/mean", "gates/1/saturated", "gates/2/mean", "gates/2/saturated",
    ]
    assert stats.scalars()["collapse/disp_variation"].item() == 0.0
    assert map_statistics(torch.rand(1, 1, 4, 4), {}).scalars().keys() == {"collapse/disp_variation"}


# ------------------------------------------------------------------------------------- in training
def flatten_from_call(monkeypatch, first_flat: int) -> None:
    """From its ``first_flat``-th forward pass (1-based) on, the depth network predicts one value
    everywhere: its disparity heads get zero weights and a bias of 10 before each pass, which is
    what a collapsed decoder does (every pixel sigmoid(10))."""
    real = self_supervised.depth_net_from_config

    def build(*args, **kwargs):
        net = real(*args, **kwargs)
        calls = []

        def flatten(module, inputs):
            calls.append(1)
            if len(calls) >= first_flat:
                with torch.no_grad():
                    for head in module.decoder.heads.values():
                        head.weight.zero_()
                        head.bias.fill_(10.0)

        net.register_forward_pre_hook(flatten)
        return net

    monkeypatch.setattr(self_supervised, "depth_net_from_config", build)


def collapse_config(fixture, out, stop: bool, max_steps: int = 4):
    # S mode, baseline: the cheapest run; 4 steps per epoch, a checkpoint after every step.
    return small_config(
        fixture, out, mode="S", max_steps=max_steps, checkpoint_every=1,
        train={"collapse_patience": 2, "stop_on_collapse": stop},
    )


def test_a_forced_collapse_stops_the_run_naming_a_healthy_checkpoint(kitti_fixture, tmp_path, monkeypatch):
    config = collapse_config(kitti_fixture, tmp_path / "run", stop=True)
    flatten_from_call(monkeypatch, 3)
    trainer = Trainer(config, build_datasets(config)[0], progress=False)
    with pytest.raises(CollapseError) as raised:
        trainer.train()
    folder = tmp_path / "run" / "checkpoints"
    healthy = folder / "healthy.pt"
    # Step 2's checkpoint is not the healthy one: step 3, the first to run with its weights, saw a
    # flat map (forced here at the forward pass, as if step 2's update had collapsed the decoder).
    assert str(raised.value) == (
        "the predicted disparity has been flat for 2 steps at step 4 (variation 0.0e+00 < train.collapse_threshold=0.001): "
        "the depth decoder has collapsed, which training has not been seen to undo; the last healthy checkpoint is "
        f"{healthy} (step 1): resume from it with a learning rate below 0.0001 (mldanet train --resume {healthy} --lr LR); "
        "keep optim.clip_grad_norm on (now 5) and check the data (hints, images)."
    )
    assert trainer.healthy_checkpoint == (healthy, 1)
    assert load_checkpoint(healthy)["step"] == 1
    assert load_checkpoint(folder / "last.pt")["step"] == 3  # written while flat, under its own name
    history = trainer.state.history
    assert [h["step"] for h in history] == [1.0, 2.0, 3.0, 4.0]
    assert all(h["collapse/disp_variation"] > 1e-3 for h in history[:2])
    assert [h["collapse/disp_variation"] for h in history[2:]] == [0.0, 0.0]
    monkeypatch.undo()
    resumed = Trainer(config, build_datasets(config)[0], resume=healthy, progress=False)
    assert resumed.state.step == 1 and resumed.monitor.streak == 0
    assert resumed.healthy_checkpoint is None  # healthy.pt is the resumed checkpoint itself, judged by its first step
    assert resumed.train(stop_at_step=2).step == 2


def test_the_train_command_prints_the_collapse_on_one_line(kitti_fixture, tmp_path, monkeypatch, capsys):
    save_config(collapse_config(kitti_fixture, tmp_path / "run", stop=True), tmp_path / "config.yaml")
    flatten_from_call(monkeypatch, 1)
    assert main(["train", "--config", str(tmp_path / "config.yaml"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("mldanet train: stopped: the predicted disparity has been flat for 2 steps at step 2 ")
    assert "no checkpoint was written while the map was healthy: start again with a lower optim.lr" in err
    assert not (tmp_path / "run" / "checkpoints" / "healthy.pt").exists()


def test_without_stop_on_collapse_a_collapse_warns_and_training_goes_on(kitti_fixture, tmp_path, monkeypatch, capsys):
    config = collapse_config(kitti_fixture, tmp_path / "run", stop=False, max_steps=5)
    flatten_from_call(monkeypatch, 3)
    state = Trainer(config, build_datasets(config)[0], progress=True).train()
    assert state.step == 5
    captured = capsys.readouterr()
    healthy = tmp_path / "run" / "checkpoints" / "healthy.pt"
    warnings = [line for line in captured.out.splitlines() if "warning" in line]
    assert warnings == [
        "step 4: warning: the predicted disparity has been flat for 2 steps at step 4 (variation 0.0e+00 < "
        "train.collapse_threshold=0.001): the depth decoder has collapsed, which training has not been seen to undo; "
        f"the last healthy checkpoint is {healthy} (step 1): resume from it with a learning rate below 0.0001 "
        f"(mldanet train --resume {healthy} --lr LR); keep optim.clip_grad_norm on (now 5) and check the data "
        "(hints, images). Training goes on (train.stop_on_collapse=true stops here)."
    ]
    assert "flat=3" in captured.err  # the progress bar's last postfix: flat for 3 steps
    last = load_checkpoint(tmp_path / "run")
    assert last["step"] == 5 and last["collapse_monitor"] == {"streak": 3, "variation": 0.0}
    assert load_checkpoint(healthy)["step"] == 1  # kept: the run ended flat

    # A resumed run continues the streak and knows the healthy checkpoint; still collapsed, it says so again.
    monkeypatch.undo()
    flatten_from_call(monkeypatch, 1)
    config = collapse_config(kitti_fixture, tmp_path / "run", stop=True, max_steps=6)
    resumed = Trainer(config, build_datasets(config)[0], resume=tmp_path / "run", progress=False)
    assert resumed.monitor.streak == 3 and resumed.healthy_checkpoint == (healthy, 1)
    with pytest.raises(CollapseError, match=rf"flat for 4 steps at step 6 .* the last healthy checkpoint is {healthy} \(step 1\)"):
        resumed.train()


def test_a_healthy_run_keeps_no_healthy_copy(kitti_fixture, tmp_path, monkeypatch):
    # Step 2 sees step 1's checkpoint healthy, which is kept as healthy.pt while step 2's replaces
    # it; the run ends healthy, so healthy.pt goes.
    real_link = keeper_module.link_checkpoint
    kept = []
    monkeypatch.setattr(
        keeper_module, "link_checkpoint", lambda path, target: kept.append(load_checkpoint(real_link(path, target))["step"])
    )
    config = collapse_config(kitti_fixture, tmp_path / "run", stop=True, max_steps=2)
    trainer = Trainer(config, build_datasets(config)[0], progress=False)
    trainer.train()
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert kept == [1]
    assert trainer.healthy_checkpoint == (last, 2) and trainer.monitor.streak == 0
    assert sorted(p.name for p in last.parent.iterdir()) == ["config.yaml", "last.pt"]
