"""``KittiRawDataset``: KITTI raw split lines → :class:`mldanet.types.Sample` (docs/METHOD.md §8.3).

Images are read with OpenCV and resized to H×W (area averaging when shrinking); the loss sees the
originals, the networks the colour-jittered copies. A flip mirrors every frame, the hint and the
ground truth, and negates the stereo baseline. Hints saved at another size are resized to H×W
with nearest neighbour (depths in training units do not depend on the resolution), with one
warning; a hint whose aspect ratio is not its image's was computed for other images and is refused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mldanet.data.augment import Augmentation, augmentation_rng, color_jitter, sample_augmentation
from mldanet.data.calibration import CAM_TO_CAM, VELO_TO_CAM
from mldanet.data.ground_truth import EVAL_SIZE, calib_dir, generate_depth_map, resize_depth_nearest, velodyne_path
from mldanet.data.images import CAMERA_NUMBERS, OTHER_SIDE, image_path, load_image, read_image_size, resize_image
from mldanet.data.npy import load_npy, npy_header
from mldanet.data.splits import parse_split_line
from mldanet.hints import HINT_BASELINE, NORMALISED_FX, hint_path
from mldanet.paths import require_dir
from mldanet.types import STEREO, FrameId, Sample

logger = logging.getLogger(__name__)


class MissingFilesError(FileNotFoundError):
    """Lines of a split whose files are missing; commands that can drop such lines say how."""


# How far (relative) a hint's width/height may be from its image's: hints are the whole image
# resized, to 1024×320 (3.5 % off KITTI's 1242×375) or 640×192 (0.6 %) in monodepth2's recipe,
# while a hint of a cropped image, another camera or a transposed array is off by far more.
HINT_ASPECT_TOLERANCE = 0.1

NORMALISED_K = np.array([[NORMALISED_FX, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)


def scaled_intrinsics(height: int, width: int, scales: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """S×4×4 pixel intrinsics K_s (the normalised KITTI K scaled by W/2^s, H/2^s) and their inverses."""
    ks = []
    for scale in scales:
        k = NORMALISED_K.copy()
        k[0] *= width / 2**scale
        k[1] *= height / 2**scale
        ks.append(k)
    ks = np.stack(ks)
    return torch.from_numpy(ks).float(), torch.from_numpy(np.linalg.inv(ks)).float()


def check_hint_shape(shape: tuple[int, ...], image_size: tuple[int, int], path: Path, image: Path) -> None:
    """Refuse, naming ``path``, a hint that is not 2-D or whose aspect ratio is not that of its
    ``image`` of (height, width) ``image_size`` (beyond :data:`HINT_ASPECT_TOLERANCE`)."""
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(
            f"depth hint {path} is not an H×W array (shape {tuple(shape)}): compute it again with `mldanet hints`"
        )
    hint_aspect, image_aspect = shape[1] / shape[0], image_size[1] / image_size[0]
    if abs(hint_aspect / image_aspect - 1) > HINT_ASPECT_TOLERANCE:
        raise ValueError(
            f"depth hint {path} is {shape[1]}×{shape[0]} (width/height {hint_aspect:.2f}) but its image {image} is "
            f"{image_size[1]}×{image_size[0]} ({image_aspect:.2f}): it was computed for other images; compute the "
            "hints again with `mldanet hints --overwrite`"
        )


def stereo_transform(side: str, flipped: bool) -> torch.Tensor:
    """4×4 transform from the frame-0 camera to its stereo partner's: x translation ∓0.1.

    The right camera sits +0.54 m along x, so points move by −0.1 (training units) into it when
    the target is left; a mirrored image swaps the cameras' roles, hence the sign flip.
    """
    side_sign = -1.0 if side == "l" else 1.0
    flip_sign = -1.0 if flipped else 1.0
    transform = torch.eye(4)
    transform[0, 3] = side_sign * flip_sign * HINT_BASELINE
    return transform


class _ExistenceCache:
    """``is_file`` via one directory listing per folder (tens of thousands of lines check fast)."""

    def __init__(self) -> None:
        self.listings: dict[Path, frozenset[str]] = {}

    def __call__(self, path: Path) -> bool:
        folder = path.parent
        if folder not in self.listings:
            try:
                self.listings[folder] = frozenset(os.listdir(folder))
            except OSError:
                self.listings[folder] = frozenset()
        return path.name in self.listings[folder]


class KittiRawDataset(Dataset):
    """KITTI raw samples for the frames ``frame_ids`` (0, −1, 1, "s") of each split line.

    root:         KITTI raw root; lines: ``<date>/<drive folder> <frame> <l|r>``.
    height/width: network resolution H×W; scales: loss scales s (K_s at H/2^s × W/2^s).
    hints_dir:    fused-SGM hints from ``mldanet hints`` (depth_hint / hint_mask) when given.
    train:        flip and colour jitter (drawn from (seed, epoch, index), see :meth:`set_epoch`).
    load_gt:      depth_gt from the Velodyne scan, nearest-resized to 375×1242 (monodepth2's
                  validation size).
    skip_missing: drop lines whose files are missing (listed in ``skipped``) instead of failing.
    source:       where ``lines`` come from (the split file), named by the errors about a line.

    The frames of one sample must share one size (KITTI's do; a frame of another size is damaged
    or from another camera): ``__getitem__`` refuses the sample, naming both files.
    """

    def __init__(
        self,
        root: str | Path,
        lines: list[str],
        height: int,
        width: int,
        frame_ids: tuple[FrameId, ...],
        hints_dir: str | Path | None = None,
        train: bool = True,
        img_ext: str = ".jpg",
        scales: tuple[int, ...] = (0, 1, 2, 3),
        load_gt: bool = False,
        skip_missing: bool = False,
        seed: int = 0,
        source: str | Path = "<lines>",
    ):
        if 0 not in frame_ids:
            raise ValueError(f"frame_ids {tuple(frame_ids)} must include 0 (the target frame)")
        for frame_id in frame_ids:
            if frame_id != STEREO and not isinstance(frame_id, int):
                raise ValueError(f"frame id {frame_id!r} is neither an integer offset nor 's'")
        if height <= 0 or width <= 0:
            raise ValueError(f"image size {height}×{width} must be positive")
        self.root = require_dir(root, "data path")
        self.height, self.width = height, width
        self.frame_ids = tuple(frame_ids)
        self.hints_dir = Path(hints_dir) if hints_dir is not None else None
        self.train = train
        self.img_ext = img_ext
        self.scales = tuple(scales)
        self.load_gt = load_gt
        self.seed = seed
        self.epoch = 0
        self.K, self.inv_K = scaled_intrinsics(height, width, self.scales)

        exists = _ExistenceCache()
        self.lines: list[str] = []
        self.items: list[tuple[str, int, str]] = []
        self.skipped: list[str] = []
        first_missing: tuple[Path, int, str] | None = None
        for lineno, line in enumerate(lines, start=1):
            item = parse_split_line(line, source, lineno)
            drive = self.root / item[0]
            absent = drive if not exists(drive) else next((p for p in self.required_files(*item) if not exists(p)), None)
            if absent is None:
                self.lines.append(line.strip())
                self.items.append(item)
                continue
            self.skipped.append(line.strip())
            first_missing = first_missing or (absent, lineno, line.strip())
        if first_missing is not None:
            path, lineno, line = first_missing
            if not skip_missing:
                what = "drive folder " if path.parent.parent == self.root else ""
                raise MissingFilesError(
                    f"{what}{path} not found (needed by line {lineno} of {source}: '{line}'; {len(self.skipped)} "
                    f"of {len(lines)} lines have missing files)"
                )
            logger.warning(
                "KittiRawDataset: skipped %d of %d lines with missing files (first: %s, line %d)",
                len(self.skipped),
                len(lines),
                path,
                lineno,
            )
        if not self.items:
            raise ValueError(
                f"no usable lines in {source}: {len(lines)} given, {len(self.skipped)} skipped for missing files"
            )
        # hint sizes already warned about, filled here (before DataLoader workers copy the dataset)
        # so that a run warns once, not once per worker or per sample
        self.warned_hint_shapes: set[tuple[int, ...]] = set()
        if self.hints_dir is not None:
            first, image = hint_path(self.hints_dir, *self.items[0]), self.frame_path(*self.items[0], 0)
            shape, _ = npy_header(first, "depth hint")
            self.note_hint_shape(shape, first, read_image_size(image), image)

    def note_hint_shape(self, shape: tuple[int, ...], path: Path, image_size: tuple[int, int], image: Path) -> bool:
        """Check a hint's shape against its image's (:func:`check_hint_shape`); True when it must be
        resized to H×W, which is warned about once per hint size."""
        check_hint_shape(shape, image_size, path, image)
        resize = tuple(shape) != (self.height, self.width)
        if resize and tuple(shape) not in self.warned_hint_shapes:
            self.warned_hint_shapes.add(tuple(shape))
            logger.warning(
                "depth hints such as %s are %d×%d, not the network's %d×%d: they are resized (nearest neighbour) "
                "at every load; `mldanet hints --width %d --height %d` computes them at this size",
                path, shape[1], shape[0], self.width, self.height, self.width, self.height,
            )
        return resize

    def required_files(self, folder: str, frame_index: int, side: str) -> list[Path]:
        """Every file a line's sample reads: frames, partner, hint and, with ``load_gt``, scan and calibration."""
        files = [self.frame_path(folder, frame_index, side, frame_id) for frame_id in self.frame_ids]
        if self.hints_dir is not None:
            files.append(hint_path(self.hints_dir, folder, frame_index, side))
        if self.load_gt:
            files.append(velodyne_path(self.root, folder, frame_index))
            files += [calib_dir(self.root, folder) / name for name in (CAM_TO_CAM, VELO_TO_CAM)]
        return files

    def frame_path(self, folder: str, frame_index: int, side: str, frame_id: FrameId) -> Path:
        if frame_id == STEREO:
            return image_path(self.root, folder, frame_index, OTHER_SIDE[side], self.img_ext)
        return image_path(self.root, folder, frame_index + int(frame_id), side, self.img_ext)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws ``__getitem__`` uses."""
        self.epoch = int(epoch)

    def augmentation(self, index: int) -> Augmentation:
        """The flip / jitter draw of sample ``index`` in the current epoch (none when not training)."""
        if not self.train:
            return Augmentation()
        return sample_augmentation(augmentation_rng(self.seed, self.epoch, index))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        folder, frame_index, side = self.items[index]
        augmentation = self.augmentation(index)
        flip = augmentation.flip

        paths = {frame_id: self.frame_path(folder, frame_index, side, frame_id) for frame_id in self.frame_ids}
        originals = {frame_id: load_image(path) for frame_id, path in paths.items()}
        target_size = originals[0].shape[:2]
        for frame_id, original in originals.items():
            if original.shape[:2] != target_size:
                raise ValueError(
                    f"{paths[frame_id]} is {original.shape[1]}×{original.shape[0]} but the target frame {paths[0]} is "
                    f"{target_size[1]}×{target_size[0]}: the frames of a sample must have one size"
                )
        images = {}
        for frame_id, original in originals.items():
            image = resize_image(original, self.height, self.width)
            if flip:
                image = image[:, ::-1]
            images[frame_id] = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
        if augmentation.jitter is None:
            net_images = dict(images)
        else:
            jittered = color_jitter(torch.stack(list(images.values())), augmentation.jitter)
            net_images = dict(zip(images, jittered.unbind(0), strict=True))

        sample = Sample(
            images=images, net_images=net_images, K=self.K.clone(), inv_K=self.inv_K.clone(), flipped=flip, index=index
        )
        if STEREO in self.frame_ids:
            sample.stereo_T = stereo_transform(side, flip)
        if self.hints_dir is not None:
            hint = self.load_hint(hint_path(self.hints_dir, folder, frame_index, side), flip, target_size, paths[0])
            sample.depth_hint = hint
            sample.hint_mask = (hint > 0).float()
        if self.load_gt:
            depth = generate_depth_map(
                calib_dir(self.root, folder), velodyne_path(self.root, folder, frame_index), CAMERA_NUMBERS[side]
            )
            depth = resize_depth_nearest(depth, *EVAL_SIZE)
            if flip:
                depth = depth[:, ::-1]
            sample.depth_gt = torch.from_numpy(np.ascontiguousarray(depth))[None]
        return sample

    def load_hint(self, path: Path, flip: bool, image_size: tuple[int, int], image: Path) -> torch.Tensor:
        """1×H×W float32 hint (training units, 0 = invalid) of ``image`` ((height, width) ``image_size``),
        nearest-resized to H×W when saved at another size (see :meth:`note_hint_shape`)."""
        hint = load_npy(path, "depth hint")  # never unpickled: an object array is refused unread
        if hint.ndim != 2 or not np.issubdtype(hint.dtype, np.floating):
            raise ValueError(f"depth hint {path} is not an H×W float array (shape {hint.shape}, {hint.dtype})")
        hint = hint.astype(np.float32, copy=False)
        if self.note_hint_shape(hint.shape, path, image_size, image):
            hint = resize_depth_nearest(hint, self.height, self.width)
        if flip:
            hint = hint[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(hint))[None]
