"""Datasets (docs/METHOD.md §8.3).

Modules: ``base`` (:class:`FrameDataset`, what every dataset shares, and the registry),
``kitti_raw`` (:class:`KittiRawDataset`), ``folder`` (:class:`FolderDataset`: your own sequences
and camera file), ``kitti`` (KITTI's constants), ``units`` (training units, the metric scale),
``calibration`` (calib files), ``images`` (KITTI layout, reading, resizing), ``splits`` (split
files), ``augment`` (flip, colour jitter), ``ground_truth`` (Velodyne depth maps), ``video``
(frames of a video), ``check`` (what ``mldanet check-data`` finds), ``npy`` (``.npy``/``.npz``
reading that never runs code hidden in a pickle).
The names below are imported lazily so that light users (hint workers) never load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "FrameDataset": "mldanet.data.base",
    "register_dataset": "mldanet.data.base",
    "build_dataset": "mldanet.data.base",
    "dataset_names": "mldanet.data.base",
    "KittiRawDataset": "mldanet.data.kitti_raw",
    "FolderDataset": "mldanet.data.folder",
    "read_split_lines": "mldanet.data.splits",
    "parse_split_line": "mldanet.data.splits",
    "generate_depth_map": "mldanet.data.ground_truth",
    "load_gt_depths": "mldanet.data.ground_truth",
    "read_calib_file": "mldanet.data.calibration",
    "load_image": "mldanet.data.images",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mldanet.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
