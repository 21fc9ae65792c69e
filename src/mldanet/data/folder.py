"""Your own image sequences: :class:`FolderDataset` (``data.dataset=folder``) and its camera file.

Layout (only the frames and one camera file are required)::

    DIR/camera.yaml                      the camera (or --intrinsics FILE)
    DIR/<sequence>/*.jpg|*.jpeg|*.png    frames; sorting the names gives the time order
    DIR/<sequence>/camera.yaml           optional: this sequence's camera, instead of the shared one
    DIR/<sequence>/right/<same names>    optional: the right camera of a stereo rig (modes S, MS)
    DIR/<sequence>/depth/<stem>.npy      optional ground truth: depth in metres (0, NaN, inf = unknown),
                         or <stem>.png   or a single-channel uint16 PNG of metres × 256 (KITTI's depth
                                         format); one file per frame, at the frame's size or the frame's
                                         size scaled (the same aspect ratio: see check_depth_size)
    DIR/splits/{train,val,test}_files.txt  optional; made from the frames when absent

A sequence is any folder under DIR (at any depth) that holds frames; ``right``, ``depth`` and
``splits`` are not sequences. A split line is ``<sequence> <frame file name>``. Without split
files every frame whose neighbours exist (±frame_step, and its right image for S/MS) is a target,
every ``data.val_every``-th of them goes to validation (and is the test list), the rest to
training; ``mldanet check-data --write-splits`` writes such files without the static frames.

The camera file (YAML or JSON) gives the 3×3 matrix in pixels and the image size it is for::

    K: [[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1]]
    image_size: [1242, 375]      # width, height
    baseline: 0.54               # metres to the right camera (modes S, MS)
    depth_scale: 0.001           # optional: metres per stored unit of the depth/ maps (here millimetres);
                                 # default 1 for .npy (metres), 1/256 for .png (KITTI's)

Every depth map is read by :func:`read_frame_depth`, the one reader of ``check-data``, ``train``'s
validation and ``evaluate``: a map whose values are mostly beyond the scored range (80 m), as
integer millimetres are, is refused with the ``depth_scale`` that would fix it.

Frames of another size than ``image_size`` are fine when they are the same picture resized (the
aspect ratio within 1 %); a cropped picture needs its own K.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mldanet.config import read_yaml_file
from mldanet.data.base import FrameDataset, Item, MissingFilesError, TrainedCamera, register_dataset
from mldanet.data.images import read_image_size
from mldanet.data.npy import load_npy
from mldanet.data.splits import SPLIT_FILES, read_lines_file
from mldanet.paths import require_dir
from mldanet.types import STEREO, FrameId

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
CAMERA_FILE = "camera.yaml"
CAMERA_FILES = (CAMERA_FILE, "camera.json")  # a sequence's own camera, in either format
RIGHT_FOLDER = "right"
DEPTH_FOLDER = "depth"
SPLITS_FOLDER = "splits"
RESERVED = (RIGHT_FOLDER, DEPTH_FOLDER)
ASPECT_TOLERANCE = 0.01  # frames may be K's image resized, not cropped
DEPTH_SUFFIXES = (".npy", ".png")
# evaluation.protocol's scored range (min_depth < gt < max_depth); data may not import evaluation,
# a test checks that the two agree
SCORED_DEPTH = (1e-3, 80.0)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: 4×4 normalised K (row 0 ÷ width, row 1 ÷ height), the size K is for, the
    stereo baseline in metres (0: none), the file it came from and the metres per stored unit of
    its sequences' depth maps (None: the format's own, see :func:`read_depth_map`)."""

    normalised_K: np.ndarray
    image_size: tuple[int, int]  # (width, height)
    baseline: float
    path: Path
    depth_scale: float | None = None

    def check_frame_size(self, frame: Path, size: tuple[int, int]) -> str | None:
        """Refuse a frame of (height, width) ``size`` that is not the camera's picture resized; for one
        that is, of another size, the note that K is rescaled to it (None at the camera's own size)."""
        height, width = size
        aspect, expected = width / height, self.image_size[0] / self.image_size[1]
        if abs(aspect / expected - 1) > ASPECT_TOLERANCE:
            raise ValueError(
                f"{frame} is {width}×{height} (width/height {aspect:.3f}) but {self.path} gives K for "
                f"{self.image_size[0]}×{self.image_size[1]} ({expected:.3f}): a cropped or other camera's picture "
                "needs its own camera file (<sequence>/camera.yaml)"
            )
        if (width, height) == tuple(self.image_size):
            return None
        return (
            f"frames such as {frame} are {width}×{height}, {self.path} gives K for {self.image_size[0]}×"
            f"{self.image_size[1]}: K is rescaled to the frames (taken as the same picture resized"
            + (", e.g. a video encoder's dropped odd row" if abs(width - self.image_size[0]) + abs(height - self.image_size[1]) <= 2 else "")
            + ")"
        )


def read_camera_file(path: str | Path) -> Camera:
    """Read a camera file (see the module docstring); every error names the file and the key."""
    path, data = read_yaml_file(path, "camera file", "YAML or JSON")
    if not isinstance(data, dict):
        raise ValueError(f"camera file {path} must be a mapping with K and image_size, not {type(data).__name__}")
    unknown = sorted(set(data) - {"K", "image_size", "baseline", "depth_scale"})
    if unknown:
        raise ValueError(
            f"camera file {path}: unknown key(s) {', '.join(map(str, unknown))} (known: K, image_size, baseline, depth_scale)"
        )
    for key in ("K", "image_size"):
        if key not in data:
            raise ValueError(f"camera file {path} has no {key}")
    try:
        k = np.array(data["K"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"camera file {path}: K must be a 3×3 matrix of numbers, got {data['K']!r}") from None
    if k.shape != (3, 3) or not np.isfinite(k).all():
        raise ValueError(f"camera file {path}: K must be a 3×3 matrix of finite numbers, got shape {k.shape}")
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise ValueError(f"camera file {path}: K's focal lengths K[0][0]={k[0, 0]:g}, K[1][1]={k[1, 1]:g} must be positive")
    if k[0, 1] != 0 or k[1, 0] != 0 or not np.array_equal(k[2], [0, 0, 1]):
        raise ValueError(
            f"camera file {path}: K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew; rectified images), got {k.tolist()}"
        )
    size = data["image_size"]
    if (
        not isinstance(size, (list, tuple)) or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ValueError(f"camera file {path}: image_size must be [width, height] in pixels, got {size!r}")
    baseline = data.get("baseline", 0.0)
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or not (math.isfinite(baseline) and baseline >= 0):
        raise ValueError(f"camera file {path}: baseline must be a distance in metres (> 0), got {baseline!r}")
    depth_scale = data.get("depth_scale")
    if depth_scale is not None and (
        isinstance(depth_scale, bool) or not isinstance(depth_scale, (int, float))
        or not (math.isfinite(depth_scale) and depth_scale > 0)
    ):
        raise ValueError(
            f"camera file {path}: depth_scale must be the metres per stored unit of the depth maps (> 0, e.g. 0.001 "
            f"for millimetres), got {depth_scale!r}"
        )
    width, height = size
    normalised = np.eye(4)
    normalised[0, :3] = k[0] / width
    normalised[1, :3] = k[1] / height
    return Camera(normalised, (width, height), float(baseline), path, None if depth_scale is None else float(depth_scale))


def is_frame(name: str) -> bool:
    return name.lower().endswith(FRAME_SUFFIXES) and not name.startswith(".")


def find_sequences(root: Path) -> dict[str, list[str]]:
    """Sequence (POSIX path relative to ``root``) → its frame names, sorted; folders without frames are left out."""
    sequences = {}
    for folder, subfolders, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        if relative == Path("."):
            subfolders[:] = [d for d in subfolders if d != SPLITS_FOLDER]
        frames = sorted(f for f in files if is_frame(f))
        if frames:
            sequences[relative.as_posix()] = frames
            subfolders[:] = [d for d in subfolders if d not in RESERVED]
        subfolders.sort()
    return sequences


def camera_file_for(root: Path, sequence: str, intrinsics: str | Path = "") -> Path:
    """The camera file of ``sequence``: its own ``camera.yaml``, else ``intrinsics``, else ``root/camera.yaml``."""
    own = next((root / sequence / name for name in CAMERA_FILES if (root / sequence / name).is_file()), None)
    if own is not None:
        return own
    shared = Path(intrinsics) if intrinsics else root / CAMERA_FILE
    if not shared.is_file():
        raise FileNotFoundError(
            f"no camera for sequence {root / sequence}: give --intrinsics FILE (3×3 K in pixels and the image size, "
            f"see `mldanet check-data --help`), or put {CAMERA_FILE} in {root} or in the sequence's folder"
            + (f" ({shared} not found)" if intrinsics else "")
        )
    return shared


def target_frames(
    sequence: str, frames: list[str], root: Path, frame_ids: tuple[FrameId, ...], frame_step: int
) -> list[str]:
    """The frames of ``sequence`` that have every neighbour ``frame_ids`` needs (and a right image for "s")."""
    offsets = [int(f) * frame_step for f in frame_ids if f != STEREO]
    low, high = -min(offsets), len(frames) - max(offsets)
    targets = frames[max(low, 0) : max(high, 0)]
    if STEREO in frame_ids:
        right = root / sequence / RIGHT_FOLDER
        partners = set(os.listdir(right)) if right.is_dir() else set()
        targets = [name for name in targets if name in partners]
    return targets


def generate_split(
    root: Path, frame_ids: tuple[FrameId, ...], frame_step: int, val_every: int, exclude: set[tuple[str, str]] = frozenset()
) -> dict[str, list[str]]:
    """Split lines of every sequence: each ``val_every``-th target to "val" (and "test"), the rest to "train"."""
    lines: dict[str, list[str]] = {"train": [], "val": []}
    for sequence, frames in find_sequences(root).items():
        targets = [n for n in target_frames(sequence, frames, root, frame_ids, frame_step) if (sequence, n) not in exclude]
        for i, name in enumerate(targets):
            held_out = val_every > 0 and i % val_every == val_every // 2
            lines["val" if held_out else "train"].append(f"{sequence} {name}")
    lines["test"] = list(lines["val"])
    return lines


class DepthMapError(ValueError):
    """A depth map that scoring would read wrongly; ``kind`` ("files", "format", "size", "units")
    lets ``check-data`` say a problem shared by many maps once."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def depth_map_path(root: Path, sequence: str, frame: str) -> Path:
    """The depth map of a frame: ``<sequence>/depth/<stem>.npy`` or ``<stem>.png`` (the ``.npy`` path
    when neither exists). Two files for one frame are refused, naming both: which is the truth is
    the user's to say, and a silent pick scores against the other one."""
    folder, stem = root / sequence / DEPTH_FOLDER, Path(frame).stem
    suffixes = [*DEPTH_SUFFIXES, *(suffix.upper() for suffix in DEPTH_SUFFIXES)]
    found: list[Path] = []
    for path in (folder / f"{stem}{suffix}" for suffix in suffixes):
        # on a case-insensitive disk (macOS, Windows) 3.npy and 3.NPY are one file
        if path.is_file() and not any(os.path.samefile(path, other) for other in found):
            found.append(path)
    if len(found) > 1:
        raise DepthMapError(
            "files",
            f"two depth maps for frame {root / sequence / frame}: {found[0]} and {found[1]}: keep the true one "
            f"and move the other out of {folder}",
        )
    return found[0] if found else folder / f"{stem}.npy"


def unit_hint(median: float) -> str:
    """What depth values of this median, mostly beyond the scored range when read as metres,
    probably are, and the number to divide them by."""
    if median / 100 <= SCORED_DEPTH[1]:
        return "probably millimetres (divide by 1000) or centimetres (divide by 100)"
    if median / 1000 <= SCORED_DEPTH[1]:
        return "probably millimetres (divide by 1000)"
    return "not metres (divide by the stored units per metre)"


def check_depth_size(shape: tuple[int, ...], frame_size: tuple[int, int], path: Path, frame: Path) -> float | None:
    """A depth map of (height, width) ``shape`` against its frame's ``frame_size`` (height, width).

    None at the frame's size; the factor when it is the frame's size scaled by one factor (each
    side within one pixel of the frame's side × the factor: a half-size map of 1242×375 is 621×187
    or 621×188). Any other size, another aspect ratio, is refused naming both sizes: a resized
    export, another camera's map or a transposed array, which stretched would score the wrong pixels.
    """
    (height, width), (frame_height, frame_width) = shape[:2], frame_size
    if (height, width) == (frame_height, frame_width):
        return None
    low = max((width - 1) / frame_width, (height - 1) / frame_height)
    high = min((width + 1) / frame_width, (height + 1) / frame_height)
    if height > 0 and width > 0 and low <= high:
        return width / frame_width
    raise DepthMapError(
        "size",
        f"depth map {path} is {width}×{height} but its frame {frame} is {frame_width}×{frame_height} (width/height "
        f"{width / max(height, 1):.3f} against {frame_width / frame_height:.3f}): not the frame's picture scaled "
        f"(a resized export, another camera's map, a transposed array?): write it at {frame_width}×{frame_height}",
    )


@dataclass(frozen=True)
class FrameDepth:
    """One frame's ground truth as :func:`read_frame_depth` reads it.

    depth: h×w float32 metres, 0 where unknown; path: its file; scale: the map is its frame's size
    × this (None: the frame's size); note: a warning about its unit (integers read as metres).
    """

    depth: np.ndarray
    path: Path
    scale: float | None = None
    note: str | None = None


def read_frame_depth(root: Path, sequence: str, frame: str, depth_scale: float | None = None) -> FrameDepth:
    """The ground truth of frame ``<sequence>/<frame>`` as ``evaluate``, validation, ``train``'s check
    and ``check-data`` read it: the one file (:func:`depth_map_path`), decoded and in metres
    (:func:`read_depth_map`, ``depth_scale`` from the camera file), at its frame's size or that size
    scaled (:func:`check_depth_size`; only the frame's header is read). Every refusal names the file."""
    path = depth_map_path(root, sequence, frame)
    depth, note = _read_depth(path, depth_scale)
    image = root / sequence / frame
    scale = check_depth_size(depth.shape, read_image_size(image), path, image)
    return FrameDepth(depth, path, scale, note)


def folder_hint_path(hints_dir: str | Path, sequence: str, frame: str) -> Path:
    """``<hints_dir>/<sequence>/<frame stem>.npy``."""
    return Path(hints_dir) / sequence / f"{Path(frame).stem}.npy"


@register_dataset("folder")
class FolderDataset(FrameDataset):
    """Image sequences in folders, with a camera file (see the module docstring); the left image is the target."""

    folder_kind = "sequence folder"
    synth_layout = "folder"

    def __init__(self, *args, intrinsics: str | Path = "", **kwargs):
        self.intrinsics_file = intrinsics
        super().__init__(*args, **kwargs)

    @classmethod
    def options(cls, data) -> dict[str, object]:
        return {"intrinsics": data.intrinsics}

    @classmethod
    def trained_camera(cls, data) -> TrainedCamera:
        """The run's camera file (``data.intrinsics``, else ``<data_path>/camera.yaml``) when it is still there."""
        if not (data.intrinsics or data.data_path):
            return TrainedCamera(None, unknown="its config names no camera file")
        path = Path(data.intrinsics or Path(data.data_path) / CAMERA_FILE)
        if not path.is_file():
            return TrainedCamera(None, unknown=f"the camera file it was trained with, {path}, is not here")
        camera = read_camera_file(path)
        return TrainedCamera(camera.normalised_K, camera.image_size, f"the run's camera file {camera.path}")

    @classmethod
    def lines_with_ground_truth(cls, data, lines: list[str]) -> list[str]:
        """The lines whose frame has a depth map (``<sequence>/depth/<stem>.npy|.png``)."""
        root = Path(data.data_path)

        def has_depth(line: str) -> bool:
            parts = line.split()
            # a malformed line is parse_line's to name
            return len(parts) == 2 and depth_map_path(root, *parts).is_file()

        return [line for line in lines if has_depth(line)]

    @classmethod
    def split_lines(cls, data, which: str, frame_ids: tuple[FrameId, ...]) -> tuple[list[str], str | Path]:
        root = require_dir(data.data_path, "data path")
        path = root / SPLITS_FOLDER / SPLIT_FILES[which]
        if path.is_file():
            return read_lines_file(path, check=None), path
        lines = generate_split(root, frame_ids, data.frame_step, data.val_every)[which]
        if not lines and which == "train":
            stereo = f", its right image in <sequence>/{RIGHT_FOLDER}/" if STEREO in frame_ids else ""
            offsets = ", ".join(f"{int(f) * data.frame_step:+d}" for f in frame_ids if f not in (0, STEREO)) or "none"
            raise ValueError(
                f"no train frames in {root}: "
                + ("no sequence folder holds frames (.jpg, .jpeg, .png)" if not find_sequences(root)
                   else f"no frame has everything the mode needs (neighbours {offsets}{stereo})")
                + "; `mldanet check-data` says more"
            )
        return lines, f"{root / SPLITS_FOLDER / SPLIT_FILES[which]} (generated: every {data.val_every}th target to val)"

    def prepare(self) -> None:
        self.sequences = find_sequences(self.root)
        self.positions = {seq: {name: i for i, name in enumerate(frames)} for seq, frames in self.sequences.items()}
        self.cameras: dict[str, Camera] = {}
        self._noted: set[tuple[Path, tuple[int, int]]] = set()

    def camera(self, sequence: str) -> Camera:
        if sequence not in self.cameras:
            path = camera_file_for(self.root, sequence, self.intrinsics_file)
            camera = next((c for c in self.cameras.values() if c.path == path), None) or read_camera_file(path)
            first = self.root / sequence / self.sequences[sequence][0]
            size = read_image_size(first)
            note = camera.check_frame_size(first, size)
            if note and (camera.path, size) not in self._noted:  # said once per camera file and frame size
                self._noted.add((camera.path, size))
                logger.warning("%s", note)
            if STEREO in self.frame_ids and not camera.baseline > 0:
                raise ValueError(
                    f"camera file {camera.path} gives no baseline, which modes S and MS need: add "
                    "'baseline: <metres between the cameras>' or train with --mode M"
                )
            self.cameras[sequence] = camera
            if STEREO in self.frame_ids:
                baselines = {c.baseline for c in self.cameras.values()}
                if len(baselines) > 1:
                    raise ValueError(
                        f"the sequences' cameras have different baselines ({', '.join(f'{b:g}' for b in sorted(baselines))} m): "
                        "one stereo-trained network has one metric scale; train them separately"
                    )
            self.stereo_baseline = camera.baseline
        return self.cameras[sequence]

    def parse_line(self, line: str, source: str | Path, lineno: int) -> Item:
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{source}, line {lineno}: '{line.strip()}' is not '<sequence> <frame file name>'")
        sequence, name = parts
        if sequence not in self.sequences:
            raise ValueError(
                f"{source}, line {lineno}: no sequence folder {self.root / sequence} with frames (.jpg, .jpeg, .png)"
            )
        position = self.positions[sequence].get(name)
        if position is None:
            raise MissingFilesError(f"{source}, line {lineno}: frame {self.root / sequence / name} not found")
        for frame_id in self.frame_ids:
            if frame_id != STEREO and not 0 <= position + self.offset(frame_id) < len(self.sequences[sequence]):
                raise MissingFilesError(
                    f"{source}, line {lineno}: frame {self.root / sequence / name} has no frame {self.offset(frame_id):+d} "
                    f"(frame id {frame_id} × frame step {self.frame_step}) in its sequence of {len(self.sequences[sequence])}"
                )
        self.camera(sequence)
        return sequence, position, "l"

    def frame_path(self, item: Item, frame_id: FrameId) -> Path:
        sequence, position, _ = item
        frames = self.sequences[sequence]
        if frame_id == STEREO:
            return self.root / sequence / RIGHT_FOLDER / frames[position]
        return self.root / sequence / frames[position + self.offset(frame_id)]

    def normalised_K(self, item: Item) -> np.ndarray:
        return self.camera(item[0]).normalised_K

    def frame_name(self, item: Item) -> str:
        return self.sequences[item[0]][item[1]]

    def hint_name(self, item: Item) -> Path:
        return folder_hint_path(Path(), item[0], self.frame_name(item))

    def ground_truth_files(self, item: Item) -> list[Path]:
        return [depth_map_path(self.root, item[0], self.frame_name(item))]

    def ground_truth(self, item: Item) -> np.ndarray:
        return read_frame_depth(self.root, item[0], self.frame_name(item), self.camera(item[0]).depth_scale).depth


def read_depth_map(path: Path, depth_scale: float | None = None) -> np.ndarray:
    """h×w float32 metres from a depth file, 0 where unknown (0, NaN, ±inf): stored value ×
    ``depth_scale`` (metres per stored unit; None: 1 for a ``.npy`` of metres, 1/256 for a
    single-channel uint16 ``.png``, KITTI's format). A map whose values are mostly beyond the
    scored range (80 m) is refused with the unit it probably is and the ``depth_scale`` that reads it."""
    return _read_depth(path, depth_scale)[0]


def _read_depth(path: Path, depth_scale: float | None) -> tuple[np.ndarray, str | None]:
    """:func:`read_depth_map`, and a warning when integers are read as metres (None otherwise)."""
    if path.suffix.lower() == ".png":
        stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if stored is None:
            if not path.is_file():
                raise FileNotFoundError(f"depth map not found: {path}")
            raise DepthMapError("format", f"cannot decode depth map {path} (corrupt or not a PNG): write it again")
        fix = "depth maps are single-channel uint16 PNGs of metres × 256 (KITTI's format) or .npy arrays of metres"
        if stored.ndim != 2:
            raise DepthMapError(
                "format", f"depth map {path} has {stored.shape[2]} channels, not one (a colour picture of depth?): {fix}"
            )
        if stored.dtype != np.uint16:
            raise DepthMapError(
                "format",
                f"depth map {path} is {'an 8-bit' if stored.dtype == np.uint8 else f'a {stored.dtype}'} PNG, not 16 bits: {fix}",
            )
        default, integer = 1 / 256, False
    else:
        stored = load_npy(path, "depth map")
        if stored.ndim != 2 or not (np.issubdtype(stored.dtype, np.integer) or np.issubdtype(stored.dtype, np.floating)):
            raise DepthMapError(
                "format",
                f"depth map {path} is not an H×W array of numbers (shape {stored.shape}, {stored.dtype}): save one "
                "H×W float array of metres per frame",
            )
        default, integer = 1.0, bool(np.issubdtype(stored.dtype, np.integer))
    scale = default if depth_scale is None else depth_scale
    depth = stored.astype(np.float64) * scale if scale != 1 else stored.astype(np.float64)
    depth[~np.isfinite(depth)] = 0.0
    depth = depth.astype(np.float32)
    known = depth > 0
    if not known.any():
        return depth, None
    stored_median = float(np.median(stored[known]))
    median = stored_median * scale
    if median > SCORED_DEPTH[1]:
        given = f" with depth_scale {depth_scale:g}" if depth_scale is not None else ""
        raise DepthMapError(
            "units",
            f"depth map {path}: its values are mostly beyond {SCORED_DEPTH[1]:g} m (median {median:g} m as read{given}), "
            f"{unit_hint(stored_median)}: give the metres per stored unit in camera.yaml, "
            f"'depth_scale: 0.001' for millimetres (0.01: centimetres), or write the maps in metres",
        )
    note = None
    if integer and depth_scale is None:
        note = (
            f"depth maps such as {path} hold integers ({stored.dtype}), read as whole metres: if they are "
            "millimetres (divide by 1000) or centimetres (by 100), add 'depth_scale: 0.001' (or 0.01) to camera.yaml"
        )
    return depth, note


def check_ground_truth(dataset: FrameDataset) -> list[str]:
    """Read every ground-truth map a folder dataset with ``load_gt`` will be scored on, as
    validation will (:func:`read_frame_depth`), before training spends an epoch reaching it.

    Returns the warnings, each said once (maps at a scaled size, integer maps read as metres);
    raises ValueError with the first refused map and how many more there are, or when no map has
    a pixel in the scored range. Other layouts: nothing (KITTI's scans are projected per frame).
    """
    if not isinstance(dataset, FolderDataset) or not dataset.load_gt:
        return []
    items = list(dict.fromkeys(dataset.items))
    refused: list[str] = []
    notes: dict[str, str] = {}
    valid = 0
    for item in items:
        sequence, name = item[0], dataset.frame_name(item)
        try:
            read = read_frame_depth(dataset.root, sequence, name, dataset.camera(sequence).depth_scale)
        except (OSError, ValueError) as error:
            refused.append(str(error))
            continue
        valid += int(np.count_nonzero((read.depth > SCORED_DEPTH[0]) & (read.depth < SCORED_DEPTH[1])))
        if read.note:
            notes.setdefault("units", read.note)
        if read.scale is not None:
            notes.setdefault(
                "scale", f"depth maps such as {read.path} are their frame's size × {read.scale:.3g}: scored as the frame's "
                "picture scaled",
            )
    if refused:
        more = f" ({len(refused) - 1} more of the {len(items)} maps are refused; `mldanet check-data` lists them)"
        raise ValueError(refused[0] + (more if len(refused) > 1 else ""))
    if not valid:
        raise ValueError(
            f"none of the {len(items)} depth maps of {dataset.root} to score has a pixel between {SCORED_DEPTH[0]:g} and "
            f"{SCORED_DEPTH[1]:g} m: there is nothing to score (all zero or unknown?)"
        )
    return list(notes.values())
