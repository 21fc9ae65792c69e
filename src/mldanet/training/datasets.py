"""Build the training and validation datasets a config describes."""

from __future__ import annotations

from mldanet.config import Config
from mldanet.data.dataset import KittiRawDataset
from mldanet.data.splits import read_lines_file, resolve_split_path
from mldanet.paths import require_dir


def build_datasets(config: Config, split_file: str | None = None) -> tuple[KittiRawDataset, KittiRawDataset | None]:
    """Train and val datasets from ``config.data``; ``split_file`` replaces the split's train list."""
    data = config.data
    if not data.data_path:
        raise ValueError("no data path: give --data-path (the KITTI raw root) or set data.data_path")
    require_dir(data.data_path, "data path")  # before the split, whose errors would hide this one
    splits_dir = data.splits_dir or None
    train_path = resolve_split_path(split_file or data.split, "train", splits_dir)
    train_lines = read_lines_file(train_path)
    hints_dir = data.hints_dir if config.loss.use_hints and "s" in config.train.frame_ids and data.hints_dir else None
    if config.loss.use_hints and "s" in config.train.frame_ids and not data.hints_dir:
        raise ValueError(
            "depth hints are on (loss.use_hints=true) but no hints directory was given: "
            "run `mldanet hints` and pass --hints-dir, or turn hints off with --set loss.use_hints=false"
        )
    common = dict(
        root=data.data_path,
        height=data.height,
        width=data.width,
        frame_ids=config.train.frame_ids,
        hints_dir=hints_dir,
        img_ext=data.img_ext,
        skip_missing=data.skip_missing,
        seed=config.train.seed,
    )
    train_set = KittiRawDataset(lines=train_lines, train=True, source=train_path, **common)
    val_set = None
    if config.train.validate and split_file is None:
        try:
            val_path = resolve_split_path(data.split, "val", splits_dir)
        except FileNotFoundError:
            val_path = None
        if val_path is not None:
            # validation scores depth against the Velodyne ground truth and logs the reprojection
            # error, neither of which uses hints: `mldanet hints` need not have run on its lines
            val_common = {**common, "hints_dir": None}
            try:
                val_set = KittiRawDataset(
                    lines=read_lines_file(val_path), train=False, load_gt=True, source=val_path, **val_common
                )
            except ValueError as error:  # every line skipped: the training split may still be whole
                raise ValueError(f"{error}; --set train.validate=false trains without validation") from None
    return train_set, val_set
