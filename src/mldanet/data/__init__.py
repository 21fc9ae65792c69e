"""KITTI raw data (docs/METHOD.md §8.3).

Modules: ``calibration`` (calib files), ``images`` (layout, reading, resizing), ``splits``
(split files, ``mldanet splits``), ``augment`` (flip, colour jitter), ``dataset``
(:class:`KittiRawDataset`), ``ground_truth`` (Velodyne depth maps, ``mldanet export-gt``), ``npy``
(``.npy``/``.npz`` reading that never runs code hidden in a pickle).
The names below are imported lazily so that light users (hint workers) never load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "KittiRawDataset": "mldanet.data.dataset",
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
