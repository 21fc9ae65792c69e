"""``FrameDataset``: what every dataset shares — split lines → :class:`mldanet.types.Sample`.

A dataset is a subclass that knows its layout: how a split line names a target frame (an
:data:`Item`), where a frame, its stereo partner, its depth hint and its ground truth are, and
the camera's normalised intrinsics. Everything else is here, once: checking that every file a
line needs exists (or dropping those lines), resizing to H×W (area averaging when shrinking),
the flip and colour jitter drawn from (seed, epoch, index) so that an exact resume replays them,
the intrinsics of every loss scale, the stereo transform, and hint loading. The loss sees the
original colours, the networks the jittered copies; a flip mirrors every frame, the hint and the
ground truth, and negates the stereo baseline.

A subclass defines three hooks (:data:`REQUIRED_HOOKS`) and any of the optional ones
(:data:`OPTIONAL_HOOKS`, each with a default). ``data.dataset`` names it by a registered name
(:func:`register_dataset`) or as ``MODULE:CLASS`` (:func:`dataset_class`); :func:`build_dataset`
makes it, :func:`compute_hints` computes its depth hints. Hints saved at another size are
resized to H×W with nearest neighbour (depths in training units do not depend on the
resolution), with one warning; a hint whose aspect ratio is not its image's was computed for
other images and is refused.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from mldanet.data.augment import Augmentation, augmentation_rng, color_jitter, sample_augmentation
from mldanet.data.depth_hints import HintJob, HintSettings, HintsSummary, Shard, check_settings, run_hint_jobs
from mldanet.data.ground_truth import resize_depth_nearest
from mldanet.data.images import load_image, read_image_size, resize_image
from mldanet.data.npy import load_npy, npy_header
from mldanet.data.splits import read_lines_file, resolve_split_path
from mldanet.geometry import scale_intrinsics
from mldanet.units import TRAINING_BASELINE
from mldanet.paths import require_dir
from mldanet.types import STEREO, FrameId, Sample

if TYPE_CHECKING:
    from mldanet.config import DataConfig

logger = logging.getLogger(__name__)

# A target frame as a split line names it: (sequence folder, frame number, side "l" | "r").
Item = tuple[str, int, str]

class MissingFilesError(FileNotFoundError):
    """Lines of a split whose files are missing; commands that can drop such lines say how."""


# How far (relative) a hint's width/height may be from its image's: hints are the whole image
# resized, to 1024×320 (3.5 % off KITTI's 1242×375) or 640×192 (0.6 %) in monodepth2's recipe,
# while a hint of a cropped image, another camera or a transposed array is off by far more.
HINT_ASPECT_TOLERANCE = 0.1


def scaled_intrinsics(
    normalised_K: np.ndarray, height: int, width: int, scales: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """S×4×4 pixel intrinsics K_s (:func:`mldanet.geometry.scale_intrinsics` of the 4×4 normalised K
    at W/2^s × H/2^s, in float64) and their inverses, as float32."""
    normalised = torch.from_numpy(np.array(normalised_K, dtype=np.float64))
    ks = torch.stack([scale_intrinsics(normalised, height / 2**scale, width / 2**scale) for scale in scales]).numpy()
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
    """4×4 transform from the frame-0 camera to its stereo partner's: x translation ∓0.1 (training units).

    The right camera sits +baseline along x, so points move by −0.1 into it when the target is
    left; a mirrored image swaps the cameras' roles, hence the sign flip.
    """
    side_sign = -1.0 if side == "l" else 1.0
    flip_sign = -1.0 if flipped else 1.0
    transform = torch.eye(4)
    transform[0, 3] = side_sign * flip_sign * TRAINING_BASELINE
    return transform


@dataclass(frozen=True)
class TrainedCamera:
    """The camera a network trained on a dataset saw, as the run's config tells it.

    normalised_K: 4×4 (row 0 ÷ width, row 1 ÷ height), None when unknown; image_size: the
    (width, height) it is for; source: where it comes from, for messages; unknown: why there is none.
    """

    normalised_K: np.ndarray | None
    image_size: tuple[int, int] = (0, 0)
    source: str = ""
    unknown: str = ""


def overrides(cls: type, hook: str) -> bool:
    """Whether ``cls`` replaces :class:`FrameDataset`'s ``hook`` (optional hooks say what a layout has)."""
    return getattr(cls, hook).__code__ is not getattr(FrameDataset, hook).__code__


class ExistenceCache:
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


class FrameDataset(Dataset):
    """Samples of the frames ``frame_ids`` (0, ±k, "s") around the target frame of each split line.

    root:         the dataset's root folder; lines: split lines (the subclass's format).
    height/width: network resolution H×W; scales: loss scales s (K_s at H/2^s × W/2^s).
    hints_dir:    fused-SGM hints from ``mldanet hints`` (depth_hint / hint_mask) when given.
    train:        flip and colour jitter (drawn from (seed, epoch, index), see :meth:`set_epoch`).
    load_gt:      depth_gt (metres, 0 = unknown), nearest-resized to :meth:`gt_size`.
    skip_missing: drop lines whose files are missing (listed in ``skipped``) instead of failing.
    check_files:  look for every file a line needs (False: the caller reads them and says what is
                  missing, as ``mldanet hints`` does per pair).
    source:       where ``lines`` come from (the split file), named by the errors about a line.
    frame_step:   temporal frame id k is the frame k·frame_step away (subsampling a fast camera).

    The frames of one sample must share one size: ``__getitem__`` refuses the sample, naming both files.

    A subclass implements three hooks, :meth:`parse_line`, :meth:`frame_path` and
    :meth:`normalised_K`; the optional ones (``docs/ARCHITECTURE.md`` lists them) give it ground
    truth, depth hints, a stereo baseline and its own split files.
    """

    name: ClassVar[str] = ""
    eigen_crop: ClassVar[bool] = False  # score validation inside the Garg/Eigen crop (KITTI's protocol)
    folder_kind: ClassVar[str] = "sequence folder"  # what errors call the folder a line names
    hints_required: ClassVar[bool] = False  # S/MS without --hints-dir is an error (else: trains without hints)
    ground_truth_kind: ClassVar[str] = "depth maps"  # what evaluate's report calls the dataset's own ground truth
    synth_layout: ClassVar[str] = ""  # the mldanet.synth.layouts layout `mldanet synth --layout NAME` writes; "": none
    stereo_baseline: float = 0.0  # metres between the cameras of a stereo pair (the metric scale of S/MS); 0: none

    def __init__(
        self,
        root: str | Path,
        lines: Sequence[str],
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
        frame_step: int = 1,
        check_files: bool = True,
    ):
        if 0 not in frame_ids:
            raise ValueError(f"frame_ids {tuple(frame_ids)} must include 0 (the target frame)")
        for frame_id in frame_ids:
            if frame_id != STEREO and not isinstance(frame_id, int):
                raise ValueError(f"frame id {frame_id!r} is neither an integer offset nor 's'")
        if height <= 0 or width <= 0:
            raise ValueError(f"image size {height}×{width} must be positive")
        if frame_step < 1:
            raise ValueError(f"frame step {frame_step} must be at least 1 (data.frame_step, --frame-step)")
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
        self.frame_step = frame_step
        self._intrinsics: dict[bytes, tuple[torch.Tensor, torch.Tensor]] = {}
        self.prepare()

        exists = ExistenceCache()
        self.lines: list[str] = []
        self.items: list[Item] = []
        self.skipped: list[str] = []
        first_missing: tuple[str, str] | None = None  # (what is missing, the line that needs it)
        for lineno, line in enumerate(lines, start=1):
            try:
                item = self.parse_line(line, source, lineno)
            except MissingFilesError as error:  # a line naming a frame that is not there
                if not skip_missing:
                    raise
                self.skipped.append(line.strip())
                first_missing = first_missing or (str(error), "")
                continue
            folder = self.root / item[0]
            absent = None if not check_files else folder if not exists(folder) else next(
                (p for p in self.required_files(item) if not exists(p)), None
            )
            if absent is None:
                self.lines.append(line.strip())
                self.items.append(item)
                continue
            self.skipped.append(line.strip())
            what = f"{self.folder_kind} " if absent == folder else ""
            first_missing = first_missing or (f"{what}{absent} not found", f"line {lineno} of {source}: '{line.strip()}'")
        if first_missing is not None:
            missing, needed_by = first_missing
            if not skip_missing:
                raise MissingFilesError(
                    f"{missing} (needed by {needed_by}; {len(self.skipped)} of {len(lines)} lines have missing files)"
                )
            logger.warning(
                "%s: skipped %d of %d lines with missing files (first: %s%s)",
                type(self).__name__, len(self.skipped), len(lines), missing, f", {needed_by}" if needed_by else "",
            )
        if not self.items:
            raise ValueError(
                f"no usable lines in {source}: {len(lines)} given, {len(self.skipped)} skipped for missing files"
            )
        # one size for every ground-truth map, so that they batch (read once: it may read an image header)
        self.depth_size = self.gt_size() if load_gt else None
        # hint sizes already warned about, filled here (before DataLoader workers copy the dataset)
        # so that a run warns once, not once per worker or per sample
        self.warned_hint_shapes: set[tuple[int, ...]] = set()
        if self.hints_dir is not None:
            first, image = self.hint_path(self.items[0]), self.frame_path(self.items[0], 0)
            shape, _ = npy_header(first, "depth hint")
            self.note_hint_shape(shape, first, read_image_size(image), image)

    # ------------------------------------------------------------------ required hooks
    def parse_line(self, line: str, source: str | Path, lineno: int) -> Item:
        """The target frame a split line names; a malformed line is a ValueError naming ``source`` and ``lineno``."""
        raise NotImplementedError

    def frame_path(self, item: Item, frame_id: FrameId) -> Path:
        """The image of ``frame_id`` (0, a temporal offset already multiplied by the frame step, or "s")."""
        raise NotImplementedError

    def normalised_K(self, item: Item) -> np.ndarray:
        """4×4 intrinsics as fractions of the image size (row 0 ÷ width, row 1 ÷ height)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ optional hooks
    @classmethod
    def options(cls, data: DataConfig) -> dict[str, object]:
        """Constructor arguments of this dataset beyond the common ones, from the config."""
        return {}

    def prepare(self) -> None:
        """Read what the layout needs before the lines are parsed (cameras, frame lists)."""

    @classmethod
    def read_split_file(cls, path: str | Path, data: DataConfig) -> list[str]:
        """The lines of a split file (``--split-file``); their format is checked by :meth:`parse_line`."""
        return read_lines_file(path, check=None)

    @classmethod
    def split_lines(cls, data: DataConfig, which: str, frame_ids: tuple[FrameId, ...]) -> tuple[list[str], str | Path]:
        """The lines of split part ``which`` ("train" | "val" | "test") that ``data`` names, and their file:
        by default ``<data.splits_dir>/<data.split>/<which>_files.txt`` (``data.split`` may be a file)."""
        path = resolve_split_path(data.split, which, data.splits_dir or None)
        return cls.read_split_file(path, data), path

    @classmethod
    def evaluation_splits(cls, data: DataConfig, frame_ids: tuple[FrameId, ...]) -> list[tuple[list[str], str | Path]]:
        """The test lists runs on ``data`` are scored on (lines, file), which training must not share a
        frame with: by default the split's own test list, when it has one."""
        try:
            return [cls.split_lines(data, "test", frame_ids)]
        except FileNotFoundError:
            return []

    @classmethod
    def test_lines(
        cls, data: DataConfig, split_file: str | Path | None, frame_ids: tuple[FrameId, ...]
    ) -> tuple[list[str], str | Path]:
        """The lines ``evaluate`` scores and their file: ``split_file``'s, else the split's test list."""
        if split_file:
            return cls.read_split_file(split_file, data), split_file
        return cls.split_lines(data, "test", frame_ids)

    @classmethod
    def test_eigen_crop(cls, data: DataConfig, split_file: str | Path | None, external_gt: bool) -> bool:
        """Whether ``evaluate`` scores the test lines inside the Garg/Eigen crop (``external_gt``: the
        ground truth comes from ``--gt`` or ``--benchmark-dir``); a test split that needs ground truth
        of another kind than the given one is refused here."""
        return cls.eigen_crop

    def ground_truth_files(self, item: Item) -> list[Path]:
        """The files :meth:`ground_truth` reads (checked before a run starts)."""
        return []

    def ground_truth(self, item: Item) -> np.ndarray:
        """h×w float32 depth in metres at the ground truth's own size, 0 where unknown."""
        raise ValueError(f"the {self.name} dataset has no ground truth: evaluate with --gt FILE")

    @classmethod
    def lines_with_ground_truth(cls, data: DataConfig, lines: list[str]) -> list[str]:
        """The lines whose frames have ground truth to validate against: all when the dataset has ground
        truth (a missing file is an error), none otherwise."""
        return lines if overrides(cls, "ground_truth") else []

    def gt_size(self) -> tuple[int, int]:
        """(height, width) validation ground truth is resized to (one size, so that it batches)."""
        return read_image_size(self.frame_path(self.items[0], 0))

    def hint_name(self, item: Item) -> Path:
        """Where ``item``'s depth hint lies under a hints folder (a relative path ending in ``.npy``)."""
        raise ValueError(f"the {self.name} dataset has no depth hints: turn them off with --set loss.use_hints=false")

    def hint_record(self, jobs: list[HintJob]) -> dict[str, object]:
        """What this layout adds to ``hints_settings.json`` for ``jobs`` (all of a run's, not a shard's)."""
        return {"layout": self.name, "normalised_fx": sorted({job.normalised_fx for job in jobs})}

    @classmethod
    def trained_camera(cls, data: DataConfig) -> TrainedCamera:
        """The camera a network trained on ``data`` saw (``predict``'s point clouds and ``view``): none known by default."""
        return TrainedCamera(None, unknown=f"the {cls.name} dataset names no camera")

    # ------------------------------------------------------------------ derived from the hooks
    @classmethod
    def has_hints(cls) -> bool:
        """Whether `mldanet hints` computes depth hints for this layout (it says where they lie)."""
        return overrides(cls, "hint_name")

    @classmethod
    def uses_split_folders(cls) -> bool:
        """Whether the layout's lines come from named split folders (``--split NAME``)."""
        return not overrides(cls, "split_lines")

    def hint_path(self, item: Item) -> Path:
        """``item``'s depth hint in ``hints_dir``."""
        return Path(self.hints_dir) / self.hint_name(item)

    def hint_jobs(self, out_dir: str | Path) -> list[HintJob]:
        """One fused-SGM job per distinct target, in order: its frame, its stereo partner, its hint
        file under ``out_dir``, its camera's fx ÷ width, and whether the target is the right camera."""
        return [
            HintJob(
                str(self.frame_path(item, 0)), str(self.frame_path(item, STEREO)), str(Path(out_dir) / self.hint_name(item)),
                float(self.normalised_K(item)[0, 0]), item[2] == "r",
            )
            for item in dict.fromkeys(self.items)
        ]

    # ------------------------------------------------------------------ shared
    def offset(self, frame_id: FrameId) -> int:
        """How many frames away temporal ``frame_id`` is (frame id × frame step)."""
        return int(frame_id) * self.frame_step

    def required_files(self, item: Item) -> list[Path]:
        """Every file a line's sample reads: frames, partner, hint and, with ``load_gt``, the ground truth."""
        files = [self.frame_path(item, frame_id) for frame_id in self.frame_ids]
        if self.hints_dir is not None:
            files.append(self.hint_path(item))
        if self.load_gt:
            files += self.ground_truth_files(item)
        return files

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

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws ``__getitem__`` uses."""
        self.epoch = int(epoch)

    def augmentation(self, index: int) -> Augmentation:
        """The flip / jitter draw of sample ``index`` in the current epoch (none when not training)."""
        if not self.train:
            return Augmentation()
        return sample_augmentation(augmentation_rng(self.seed, self.epoch, index))

    def intrinsics(self, item: Item) -> tuple[torch.Tensor, torch.Tensor]:
        """S×4×4 K_s and inverses of ``item``'s camera at H×W (cached per camera)."""
        normalised = np.asarray(self.normalised_K(item), dtype=np.float64)
        key = normalised.tobytes()
        if key not in self._intrinsics:
            self._intrinsics[key] = scaled_intrinsics(normalised, self.height, self.width, self.scales)
        K, inv_K = self._intrinsics[key]
        return K.clone(), inv_K.clone()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        augmentation = self.augmentation(index)
        flip = augmentation.flip

        paths = {frame_id: self.frame_path(item, frame_id) for frame_id in self.frame_ids}
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

        K, inv_K = self.intrinsics(item)
        sample = Sample(images=images, net_images=net_images, K=K, inv_K=inv_K, flipped=flip, index=index)
        if STEREO in self.frame_ids:
            sample.stereo_T = stereo_transform(item[2], flip)
        if self.hints_dir is not None:
            hint = self.load_hint(self.hint_path(item), flip, target_size, paths[0])
            sample.depth_hint = hint
            sample.hint_mask = (hint > 0).float()
        if self.load_gt:
            depth = resize_depth_nearest(self.ground_truth(item), *self.depth_size)
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


# What a subclass may define (docs/ARCHITECTURE.md, "Dataset hooks", lists them with one line each):
# the three without a default, and the rest, which have one.
REQUIRED_HOOKS = ("parse_line", "frame_path", "normalised_K")
OPTIONAL_HOOKS = (
    "stereo_baseline", "eigen_crop", "hints_required", "folder_kind", "ground_truth_kind",
    "options", "prepare", "read_split_file", "split_lines", "evaluation_splits", "test_lines", "test_eigen_crop",
    "ground_truth_files", "ground_truth", "lines_with_ground_truth", "gt_size", "hint_name", "hint_record",
    "trained_camera", "synth_layout",
)

# ---------------------------------------------------------------------------------- the registry
DATASETS: dict[str, type[FrameDataset]] = {}
# Modules whose import registers the datasets that ship with the package (imported on first use,
# so that `import mldanet.data.base` stays light).
BUILTIN_DATASET_MODULES = ("mldanet.data.kitti_raw", "mldanet.data.folder")


def register_dataset(name: str) -> Callable[[type[FrameDataset]], type[FrameDataset]]:
    """Class decorator: make a :class:`FrameDataset` subclass the dataset ``data.dataset=name`` builds."""

    def register(cls: type[FrameDataset]) -> type[FrameDataset]:
        if name in DATASETS and DATASETS[name] is not cls:
            raise ValueError(f"dataset name {name!r} is already registered by {DATASETS[name].__qualname__}")
        cls.name = name
        DATASETS[name] = cls
        return cls

    return register


def dataset_names() -> list[str]:
    """The registered dataset names (those shipped with the package, and any registered since)."""
    for module in BUILTIN_DATASET_MODULES:
        importlib.import_module(module)
    return sorted(DATASETS)


def dataset_help() -> str:
    """What ``--dataset`` accepts, for the commands' help."""
    return f"{' | '.join(dataset_names())}, or MODULE:CLASS (a FrameDataset subclass in a module on PYTHONPATH)"


def dataset_class(name: str) -> type[FrameDataset]:
    """The dataset ``data.dataset=name`` names: a registered name, or ``MODULE:CLASS``, a
    :class:`FrameDataset` subclass in an importable module (named by ``name`` unless it registers itself)."""
    if is_module_spec(name):
        return imported_dataset_class(name)
    names = dataset_names()
    if name not in DATASETS:
        raise ValueError(f"data.dataset={name!r} is not one of {', '.join(names)}, nor MODULE:CLASS")
    return DATASETS[name]


def is_module_spec(name: str) -> bool:
    """Whether ``data.dataset=name`` names a class in a user's module (``MODULE:CLASS``), not a registered dataset."""
    return ":" in name


def imported_dataset_class(spec: str) -> type[FrameDataset]:
    """The class of ``MODULE:CLASS``; a missing module or class, or one that is no dataset, is an error naming ``spec``."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name.isidentifier():
        raise ValueError(f"data.dataset={spec!r} is not MODULE:CLASS (such as mypkg.mymodule:MyDataset)")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name and (error.name == module_name or module_name.startswith(error.name + "."))
        where = "is it on PYTHONPATH?" if missing else str(error)
        raise ValueError(f"data.dataset={spec!r}: cannot import module {module_name!r} ({where})") from None
    except Exception as error:  # the user's module failed while importing: theirs to fix, not a bug here
        raise ValueError(f"data.dataset={spec!r}: importing module {module_name!r} failed: {type(error).__name__}: {error}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"data.dataset={spec!r}: module {module_name!r} has no {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, FrameDataset)):
        raise ValueError(f"data.dataset={spec!r}: {class_name!r} is not a subclass of mldanet.data.base.FrameDataset")
    missing = [hook for hook in REQUIRED_HOOKS if not overrides(cls, hook)]
    if missing:
        raise ValueError(f"data.dataset={spec!r}: {class_name} does not define the required hook(s) {', '.join(missing)} "
                         "(docs/ARCHITECTURE.md, \"Dataset hooks\")")
    if "name" not in vars(cls):
        cls.name = spec
    return cls


def trained_camera(data: DataConfig) -> TrainedCamera:
    """The camera of a run on ``data`` (:meth:`FrameDataset.trained_camera`); unknown when its dataset
    cannot be reached here (a user's module that is not on this machine's path)."""
    if is_module_spec(data.dataset):  # a checkpoint's config must not make this process import a module it names
        return TrainedCamera(None, unknown=f"the run trained on a dataset of a user's module (data.dataset={data.dataset}), "
                                           "whose camera is not looked up")
    try:
        cls = dataset_class(data.dataset)
    except ValueError as error:
        return TrainedCamera(None, unknown=f"predict knows no camera of data.dataset={data.dataset}: {error}")
    return cls.trained_camera(data)


def data_root(data: DataConfig) -> Path:
    """``data.data_path`` as an existing folder; an empty one is named with the flag that sets it."""
    if not data.data_path:
        raise ValueError(
            f"no data path: give --data-path (the {dataset_class(data.dataset).name} dataset's root) or set data.data_path"
        )
    return require_dir(data.data_path, "data path")


def build_dataset(
    data: DataConfig,
    lines: Sequence[str],
    frame_ids: tuple[FrameId, ...],
    *,
    train: bool,
    source: str | Path,
    load_gt: bool = False,
    hints_dir: str | Path | None = None,
    seed: int = 0,
    img_ext: str | None = None,
    check_files: bool = True,
) -> FrameDataset:
    """The ``data.dataset`` dataset of ``lines`` at ``data``'s resolution (what train, evaluate, hints and demo use)."""
    cls = dataset_class(data.dataset)
    return cls(
        data_root(data), list(lines), data.height, data.width, frame_ids, hints_dir=hints_dir, train=train,
        img_ext=img_ext or data.img_ext, load_gt=load_gt, skip_missing=data.skip_missing, seed=seed, source=source,
        frame_step=data.frame_step, check_files=check_files, **cls.options(data),
    )


def compute_hints(
    data: DataConfig,
    lines: Sequence[str],
    out_dir: str | Path,
    settings: HintSettings,
    *,
    source: str | Path = "<lines>",
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    shard: Shard | None = None,
) -> HintsSummary:
    """Fused-SGM hints for the target of every line of ``data``'s dataset (or ``shard``'s share of
    them) into ``out_dir``: the dataset's :meth:`FrameDataset.hint_jobs`, run by
    :func:`mldanet.data.depth_hints.run_hint_jobs`, which reports a missing image per pair (left out
    and counted with ``data.skip_missing``)."""
    check_settings(settings, workers)  # before the lines are read: a bad flag is named first
    sized = replace(data, height=settings.height, width=settings.width)
    dataset = build_dataset(sized, lines, (0, STEREO), train=False, source=source, check_files=False)
    jobs = dataset.hint_jobs(out_dir)
    return run_hint_jobs(
        jobs, out_dir, settings, dataset.hint_record(jobs), workers=workers, overwrite=overwrite, progress=progress,
        skip_missing=data.skip_missing, shard=shard,
    )
