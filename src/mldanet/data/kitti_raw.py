"""``KittiRawDataset`` (``data.dataset=kitti``, docs/METHOD.md §8.3): KITTI raw split lines → samples.

Split lines are monodepth2's ``<date>/<drive folder> <frame> <l|r>``; images live at
``<root>/<date>/<drive>_sync/image_0{2,3}/data/<10-digit frame>.{jpg,png}``; validation ground
truth is the Velodyne scan projected into the camera, nearest-resized to 375×1242 (monodepth2's
validation size).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mldanet.data.base import FrameDataset, Item, TrainedCamera, register_dataset
from mldanet.data.calibration import CAM_TO_CAM, VELO_TO_CAM
from mldanet.data.depth_hints import HintJob
from mldanet.data.ground_truth import BENCHMARK_SPLIT, EVAL_SIZE, calib_dir, generate_depth_map, velodyne_path
from mldanet.data.images import CAMERA_NUMBERS, OTHER_SIDE, image_path
from mldanet.data.kitti import BASELINE, NORMALISED_FX, NORMALISED_K, hint_path
from mldanet.data.splits import SPLIT_FILES, parse_split_line, read_lines_file, resolve_split_path, resolve_splits_dir
from mldanet.types import STEREO, FrameId


EIGEN_TEST_SPLIT = "eigen"


@register_dataset("kitti")
class KittiRawDataset(FrameDataset):
    """KITTI raw samples; lines ``<date>/<drive folder> <frame> <l|r>`` (both cameras are targets)."""

    eigen_crop = True
    hints_required = True  # the paper's recipe: a KITTI run without hints is asked for by name
    folder_kind = "drive folder"
    ground_truth_kind = "velodyne"
    synth_layout = "kitti"
    stereo_baseline = BASELINE

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

    @classmethod
    def test_lines(cls, data, split_file: str | Path | None, frame_ids: tuple[FrameId, ...]) -> tuple[list[str], Path]:
        """The test list of ``split_file`` (a file or a split name), else of split ``data.split``."""
        path = resolve_split_path(split_file or data.split, "test", data.splits_dir or None)
        return read_lines_file(path), path

    @classmethod
    def test_eigen_crop(cls, data, split_file: str | Path | None, external_gt: bool) -> bool:
        """The Eigen crop, except on ``eigen_benchmark``, which is scored on the annotated depth maps."""
        if data.split != BENCHMARK_SPLIT or split_file:
            return True
        if not external_gt:
            raise ValueError(f"split {BENCHMARK_SPLIT} is scored on the annotated depth maps: give --gt or --benchmark-dir")
        return False

    @classmethod
    def trained_camera(cls, data) -> TrainedCamera:
        return TrainedCamera(NORMALISED_K, (EVAL_SIZE[1], EVAL_SIZE[0]), "KITTI's normalised K")

    def parse_line(self, line: str, source: str | Path, lineno: int) -> Item:
        return parse_split_line(line, source, lineno)

    def frame_path(self, item: Item, frame_id: FrameId) -> Path:
        folder, frame_index, side = item
        if frame_id == STEREO:
            return image_path(self.root, folder, frame_index, OTHER_SIDE[side], self.img_ext)
        return image_path(self.root, folder, frame_index + self.offset(frame_id), side, self.img_ext)

    def normalised_K(self, item: Item) -> np.ndarray:
        return NORMALISED_K

    def hint_name(self, item: Item) -> Path:
        return hint_path(Path(), *item)

    def hint_record(self, jobs: list[HintJob]) -> dict[str, object]:
        return {"img_ext": self.img_ext, "normalised_fx": NORMALISED_FX}

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
