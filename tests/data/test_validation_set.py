"""The validation set of a training run needs no depth hints (issue: the demo's data could not train
with validation on, since `mldanet hints` runs on the training lines only)."""

from __future__ import annotations

from torch.utils.data import DataLoader

from mldanet.config import DataConfig, config_from_dict
from mldanet.data.kitti import hint_path
from mldanet.data.base import compute_hints
from mldanet.data.depth_hints import HintSettings
from mldanet.synth import write_synthetic_drives
from mldanet.training.datasets import build_datasets
from mldanet.types import collate_samples

from .kitti_layout import write_lines


def test_validation_builds_and_iterates_without_hints(tmp_path):
    drives = write_synthetic_drives(tmp_path / "kitti", drives=2, frames=4, seed=3, width=310, height=94, workers=1, progress=False)
    drive = f"{drives.date}/{drives.train_drives[0]}"
    splits = tmp_path / "splits"
    (splits / "demo").mkdir(parents=True)
    train_lines = [f"{drive} 1 l", f"{drive} 1 r"]
    val_lines = [f"{drive} 2 l", f"{drive} 2 r"]  # no hints computed for these
    write_lines(splits / "demo" / "train_files.txt", train_lines)
    write_lines(splits / "demo" / "val_files.txt", val_lines)
    hints_dir = tmp_path / "hints"
    compute_hints(DataConfig(data_path=str(drives.root)), train_lines, hints_dir, HintSettings(48, 160, (1,), (16,)),
                  progress=False)
    assert not hint_path(hints_dir, drive, 2, "l").exists()
    config = config_from_dict({
        "data": {"data_path": str(drives.root), "splits_dir": str(splits), "split": "demo", "hints_dir": str(hints_dir),
                 "height": 48, "width": 160, "num_workers": 0},
        "loss": {"use_hints": True},
        "train": {"mode": "MS", "validate": True, "out": str(tmp_path / "run")},
    })

    train_set, val_set = build_datasets(config)

    assert train_set.hints_dir == hints_dir and train_set[0].depth_hint.shape == (1, 48, 160)
    assert val_set is not None and val_set.hints_dir is None and val_set.lines == val_lines
    batch = next(iter(DataLoader(val_set, batch_size=2, collate_fn=collate_samples)))
    assert batch.depth_hint is None and batch.hint_mask is None
    assert batch.images["s"].shape == (2, 3, 48, 160)  # the stereo partner is still loaded
    assert batch.depth_gt.shape == (2, 1, 375, 1242) and (batch.depth_gt > 0).any()
