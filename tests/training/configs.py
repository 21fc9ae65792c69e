"""Small training configurations on the KITTI-layout fixture (tests/conftest.py), for the trainer tests."""

from __future__ import annotations

from pathlib import Path

from mldanet.config import Config, config_from_dict


def small_config(
    fixture, out, mode="MS", checkpoint_every=2, variant="baseline", validate=False, loss=None, train=None, **optim
) -> Config:
    """A scratch network at 64×128, batch 2, on the fixture's 8 training lines (4 steps per epoch)."""
    return config_from_dict(
        {
            "model": {"weights_init": "scratch", "variant": variant},
            "data": {
                "data_path": str(fixture["data"]),
                "splits_dir": str(fixture["splits"]),
                "split": "fixture",
                "hints_dir": str(fixture["hints"]),
                "height": 64,
                "width": 128,
                "num_workers": 0,
            },
            "loss": {"use_hints": "S" in mode, **(loss or {})},
            "optim": {"batch_size": 2, "epochs": 2, "lr": 1e-4, **optim},
            "train": {
                "mode": mode, "out": str(out), "checkpoint_every": checkpoint_every, "log_every": 1, "image_every": 0,
                "validate": validate, **(train or {}),
            },
        }
    )


def fixture_flags(fixture) -> list[str]:
    """`mldanet train` flags that point at the fixture (data, splits, hints)."""
    return [
        "--data-path", str(fixture["data"]), "--splits-dir", str(fixture["splits"]), "--split", "fixture",
        "--hints-dir", str(fixture["hints"]),
    ]


def train_argv(fixture, out: Path, *extra: str) -> list[str]:
    """`mldanet train` arguments for a scratch baseline network at 64×128 in S mode without hints,
    batch 2 (4 steps per epoch), no validation, no progress bar, into ``out``."""
    return [
        "train", *fixture_flags(fixture), "--weights-init", "scratch", "--height", "64", "--width", "128",
        "--batch-size", "2", "--num-workers", "0", "--mode", "S", "--set", "model.variant=baseline",
        "--set", "loss.use_hints=false", "--set", "train.validate=false", "--out", str(out), "--no-progress", *extra,
    ]


def state_dicts(path: Path | dict) -> dict:
    """The trained state of a checkpoint (or a loaded payload): networks and learned loss weights."""
    import torch

    payload = torch.load(path, weights_only=True) if not isinstance(path, dict) else path
    return {name: payload.get(name) for name in ("depth_net", "pose_net", "loss_weighting") if payload.get(name) is not None}
