"""``KittiRawDataset`` (``data.dataset=kitti``, docs/METHOD.md §8.3): KITTI raw split lines → samples.

Split lines are monodepth2's ``<date>/<drive folder> <frame> <l|r>``; images live at
``<root>/<date>/<drive>_sync/image_0{2,3}/data/<10-digit frame>.{jpg,png}``; validation ground
truth is the Velodyne scan projected into the camera, nearest-resized to 375×1242 (monodepth2's
validation size).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mldanet.data.base import FrameDataset, Item, register_dataset
from mldanet.data.calibration import CAM_TO_CAM, VELO_TO_CAM
from mldanet.data.ground_truth import EVAL_SIZE, calib_dir, generate_depth_map, velodyne_path
from mldanet.data.images import CAMERA_NUMBERS, OTHER_SIDE, image_path
from mldanet.data.kitti import BASELINE, NORMALISED_K, hint_path
from mldanet.data.splits import SPLIT_FILES, parse_split_line, read_lines_file, resolve_split_path, resolve_splits_dir
from mldanet.types import STEREO, FrameId


EIGEN_TEST_SPLIT = "eigen"


@register_dataset("kitti")
class KittiRawDataset(FrameDataset):
    """KITTI raw samples; lines ``<date>/<drive folder> <frame> <l|r>`` (both cameras are targets)."""

    eigen_crop = True
    has_hints = True
    hints_required = True  # the paper's recipe: a KITTI run without hints is asked for by name
    folder_kind = "drive folder"
    stereo_baseline = BASELINE

    @classmethod
    def split_lines(cls, data, which: str, frame_ids: tuple[FrameId, ...]) -> tuple[list[str], Path]:
        path = resolve_split_path(data.split, which, data.splits_dir or None)
        return read_lines_file(path), path

    @classmethod
    def evaluation_splits(cls, data, frame_ids: tuple[FrameId, ...]) -> list[tuple[list[str], Path]]:
        """The split's own test list and the Eigen test list (the paper's table), where the splits folder has them."""
        try:
            splits_dir = resolve_splits_dir(data.splits_dir or None)
        except (ValueError, OSError):  # lines from --split-file alone: no split folder to check against
            return []
        found = super().evaluation_splits(data, frame_ids)
        eigen = splits_dir / EIGEN_TEST_SPLIT / SPLIT_FILES["test"]
        if eigen.is_file() and all(Path(path).resolve() != eigen.resolve() for _, path in found):
            found.append((read_lines_file(eigen), eigen))
        return found

    @classmethod
    def read_split_file(cls, path: str | Path, data) -> list[str]:
        # a split name or a file; every line checked now, before any image is looked for
        return read_lines_file(resolve_split_path(path, "train", data.splits_dir or None))

    def parse_line(self, line: str, source: str | Path, lineno: int) -> Item:
        return parse_split_line(line, source, lineno)

    def frame_path(self, item: Item, frame_id: FrameId) -> Path:
        folder, frame_index, side = item
        if frame_id == STEREO:
            return image_path(self.root, folder, frame_index, OTHER_SIDE[side], self.img_ext)
        return image_path(self.root, folder, frame_index + self.offset(frame_id), side, self.img_ext)

    def normalised_K(self, item: Item) -> np.ndarray:
        return NORMALISED_K

    def hint_path(self, item: Item) -> Path:
        return hint_path(self.hints_dir, *item)

    def ground_truth_files(self, item: Item) -> list[Path]:
        folder, frame_index, _ = item
        return [velodyne_path(self.root, folder, frame_index)] + [
            calib_dir(self.root, folder) / name for name in (CAM_TO_CAM, VELO_TO_CAM)
        ]

    def ground_truth(self, item: Item) -> np.ndarray:
        folder, frame_index, side = item
        return generate_depth_map(
            calib_dir(self.root, folder), velodyne_path(self.root, folder, frame_index), CAMERA_NUMBERS[side]
        )

    def gt_size(self) -> tuple[int, int]:
        return EVAL_SIZE
