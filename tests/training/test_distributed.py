"""Data-parallel training: two gloo ranks on the CPU under a real ``torchrun``, against one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mldanet.config import save_config
from mldanet.losses import build_loss_weighting
from mldanet.training import distributed
from mldanet.models.checkpoint import load_checkpoint
from mldanet.training.datasets import build_datasets
from mldanet.training.trainer import Trainer

from .configs import small_config, state_dicts
from .ddp_worker import batchnorm_inputs

WORKER = Path(__file__).with_name("ddp_worker.py")
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def torchrun(*args: str) -> None:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` (one thread per rank: the CPU is shared)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def test_backend_follows_the_device():
    assert distributed.backend_for(torch.device("cuda", 1)) == "nccl"
    assert distributed.backend_for(torch.device("cpu")) == "gloo"


def test_context_comes_from_torchrun_variables(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "TORCHELASTIC_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    single = distributed.context_from_environment()
    assert (single.rank, single.world_size, single.enabled, single.is_main) == (0, 1, False, True)
    assert distributed.setup(torch.device("cpu")) == (single, torch.device("cpu"))
    assert not torch.distributed.is_initialized()
    assert not distributed.restarted_by_torchrun()

    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "2")
    fourth = distributed.context_from_environment()
    assert (fourth.rank, fourth.local_rank, fourth.world_size, fourth.is_main) == (3, 1, 4, False)
    assert distributed.restarted_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not an integer"):
        distributed.context_from_environment()
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="RANK=3 and WORLD_SIZE=3"):
        distributed.context_from_environment()


# Automasking and depth hints average over the masked pixels of a rank's batch, which weighs a
# rank's pixels by its own mask count; without them every loss term is a mean over samples, so
# DDP's averaged gradient is the gradient of the doubled batch. The learned loss weights stay on
# (their gradients are averaged outside DDP).
LOSS = {"use_hints": False, "automask": False, "weighting": "uncertainty"}
# Adam scales every gradient element to a step of about lr, so float32 rounding in elements whose
# gradient is near zero becomes a whole step: at lr 1e-4 the same single process on 1 and on 2
# threads ends 1.5e-4 apart after 3 steps, and at 1e-5 2 ranks end 1.7e-4 from 1 process on an
# AVX-512 CPU (1e-5 on AVX2). At 1e-6 such steps stay well within the 1e-4 tolerance,
# while the batch-norm running statistics (not bounded by lr) still tell synchronised from not.
LR = 1e-6


@pytest.fixture(scope="module")
def runs(kitti_fixture, tmp_path_factory) -> dict:
    """3 MS steps three ways: 2 ranks × batch 1 (worker, no sync-bn), the same through
    ``torchrun -m mldanet train --sync-bn``, and 1 process × batch 2."""
    folder = tmp_path_factory.mktemp("ddp")
    common = dict(mode="MS", max_steps=3, checkpoint_every=100, loss=LOSS, lr=LR)
    config = small_config(kitti_fixture, folder / "plain", batch_size=1, **common)
    save_config(config, folder / "plain.yaml")
    torchrun(str(WORKER), str(folder / "plain.yaml"), str(folder))
    config.train.out = str(folder / "sync")
    save_config(config, folder / "sync.yaml")
    torchrun("-m", "mldanet", "train", "--config", str(folder / "sync.yaml"), "--sync-bn", "--no-progress")
    single = small_config(kitti_fixture, folder / "single", batch_size=2, **common)
    Trainer(single, build_datasets(single)[0], progress=False).train()
    return {"folder": folder, "config": config}


def parameters(state: dict) -> dict[str, torch.Tensor]:
    """Trainable tensors only: without sync-bn each rank's running statistics are its own batch's."""
    return {f"{net}.{k}": v for net, sd in state.items() if sd for k, v in sd.items() if not k.endswith(BUFFERS)}


def test_all_reduce_batchnorm_equals_one_process(runs):
    x, weights, layer = batchnorm_inputs()
    full = x.clone().requires_grad_()
    output = layer(full)
    (output * weights).sum().backward()
    ranks = [torch.load(runs["folder"] / f"batchnorm_rank{r}.pt", weights_only=True) for r in (0, 1)]
    torch.testing.assert_close(torch.cat([r["output"] for r in ranks]), output.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([r["input_grad"] for r in ranks]), full.grad, atol=1e-5, rtol=1e-5)
    # Each rank holds its share of the parameter gradients; DDP sums (and scales) them.
    torch.testing.assert_close(ranks[0]["weight_grad"] + ranks[1]["weight_grad"], layer.weight.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ranks[0]["bias_grad"] + ranks[1]["bias_grad"], layer.bias.grad, atol=1e-5, rtol=1e-5)
    for r in ranks:
        torch.testing.assert_close(r["running_mean"], layer.running_mean, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(r["running_var"], layer.running_var, atol=1e-6, rtol=1e-6)


def test_two_ranks_end_with_identical_parameters_and_rank_0_alone_writes(runs):
    folder = runs["folder"]
    rank0, rank1 = (parameters(torch.load(folder / f"rank{r}.pt", weights_only=True)) for r in (0, 1))
    assert rank0.keys() == rank1.keys() and any(k.startswith("pose_net.") for k in rank0)
    different = [k for k in rank0 if not torch.equal(rank0[k], rank1[k])]
    assert not different, f"ranks disagree on {len(different)} tensors, e.g. {different[:3]}"
    initial = build_loss_weighting(runs["config"].loss).state_dict()
    moved = {k for k, v in initial.items() if not torch.equal(rank0[f"loss_weighting.{k}"], v)}
    assert moved == {"log_vars.reprojection", "log_vars.smoothness"}  # the active terms (no hints here)

    checkpoint = load_checkpoint(folder / "plain")
    assert checkpoint["step"] == 3 and checkpoint["world_size"] == 2
    saved = parameters(state_dicts(checkpoint))
    assert saved.keys() == rank0.keys()  # the unwrapped modules' keys: loadable by one process
    assert all(torch.equal(v, rank0[k]) for k, v in saved.items())
    assert {int(s["step"]) for s in checkpoint["optimizer"]["state"].values()} == {3}
    assert len(list((folder / "plain" / "tensorboard").glob("events.*"))) == 1


def max_difference(a: dict, b: dict) -> tuple[float, str]:
    """The largest element difference between two checkpoints' networks, and where it is."""
    worst = (0.0, "")
    for net in ("depth_net", "pose_net", "loss_weighting"):
        assert a[net].keys() == b[net].keys()
        for key, value in a[net].items():
            worst = max(worst, ((value.double() - b[net][key].double()).abs().max().item(), f"{net}.{key}"))
    return worst


def test_sync_bn_on_two_ranks_equals_one_process_with_the_doubled_batch(runs, capsys):
    folder = runs["folder"]
    synced = load_checkpoint(folder / "sync")
    assert synced["config"]["train"]["sync_bn"] and synced["world_size"] == 2 and synced["step"] == 3
    one = state_dicts(load_checkpoint(folder / "single"))
    worst, where = max_difference(state_dicts(synced), one)
    unsynced, unsynced_where = max_difference(state_dicts(load_checkpoint(folder / "plain")), one)
    with capsys.disabled():
        print(f"\n2 ranks × 1 vs 1 process × 2 after 3 steps: max |difference| {worst:.2g} with sync-bn ({where}), "
              f"{unsynced:.2g} without ({unsynced_where})")
    assert worst <= 1e-4
    assert unsynced > 1e-2  # each rank's batch norm saw only its own sample
