"""Your own image sequences: :class:`FolderDataset` (``data.dataset=folder``) and its camera file.

Layout (only the frames and one camera file are required)::

    DIR/camera.yaml                      the camera (or --intrinsics FILE)
    DIR/<sequence>/*.jpg|*.jpeg|*.png    frames; sorting the names gives the time order
    DIR/<sequence>/camera.yaml           optional: this sequence's camera, instead of the shared one
    DIR/<sequence>/right/<same names>    optional: the right camera of a stereo rig (modes S, MS)
    DIR/<sequence>/depth/<stem>.npy      optional ground truth: float depth in metres (0 = unknown),
                         or <stem>.png   or uint16 PNG of metres × 256 (KITTI's depth format)
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
from mldanet.data.base import FrameDataset, Item, MissingFilesError, register_dataset
from mldanet.data.depth_hints import HintJob
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

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: 4×4 normalised K (row 0 ÷ width, row 1 ÷ height), the size K is for, the
    stereo baseline in metres (0: none) and the file it came from."""

    normalised_K: np.ndarray
    image_size: tuple[int, int]  # (width, height)
    baseline: float
    path: Path

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
    unknown = sorted(set(data) - {"K", "image_size", "baseline"})
    if unknown:
        raise ValueError(f"camera file {path}: unknown key(s) {', '.join(map(str, unknown))} (known: K, image_size, baseline)")
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
    width, height = size
    normalised = np.eye(4)
    normalised[0, :3] = k[0] / width
    normalised[1, :3] = k[1] / height
    return Camera(normalised, (width, height), float(baseline), path)


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


def depth_map_path(root: Path, sequence: str, frame: str) -> Path:
    """The depth map of a frame: ``<sequence>/depth/<stem>.png`` when it exists, else ``<stem>.npy``."""
    folder, stem = root / sequence / DEPTH_FOLDER, Path(frame).stem
    png = folder / f"{stem}.png"
    return png if png.is_file() else folder / f"{stem}.npy"


def folder_hint_path(hints_dir: str | Path, sequence: str, frame: str) -> Path:
    """``<hints_dir>/<sequence>/<frame stem>.npy``."""
    return Path(hints_dir) / sequence / f"{Path(frame).stem}.npy"


@register_dataset("folder")
class FolderDataset(FrameDataset):
    """Image sequences in folders, with a camera file (see the module docstring); the left image is the target."""

    folder_kind = "sequence folder"
    has_hints = True

    def __init__(self, *args, intrinsics: str | Path = "", **kwargs):
        self.intrinsics_file = intrinsics
        super().__init__(*args, **kwargs)

    @classmethod
    def options(cls, data) -> dict[str, object]:
        return {"intrinsics": data.intrinsics}

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

    def hint_path(self, item: Item) -> Path:
        return folder_hint_path(self.hints_dir, item[0], self.frame_name(item))

    def hint_jobs(self, out_dir: str | Path) -> list[HintJob]:
        """One fused-SGM job per target: the frame, its right image, its camera's fx ÷ width."""
        return [
            HintJob(
                str(self.frame_path(item, 0)), str(self.frame_path(item, STEREO)),
                str(folder_hint_path(out_dir, item[0], self.frame_name(item))),
                float(self.normalised_K(item)[0, 0]),
            )
            for item in dict.fromkeys(self.items)
        ]

    def ground_truth_files(self, item: Item) -> list[Path]:
        return [depth_map_path(self.root, item[0], self.frame_name(item))]

    def ground_truth(self, item: Item) -> np.ndarray:
        return read_depth_map(depth_map_path(self.root, item[0], self.frame_name(item)))


def read_depth_map(path: Path) -> np.ndarray:
    """h×w float32 metres from a ``.npy`` (float, metres) or a uint16 ``.png`` (metres × 256); 0 where unknown."""
    if path.suffix == ".png":
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            if not path.is_file():
                raise FileNotFoundError(f"depth map not found: {path}")
            raise ValueError(f"cannot decode depth map {path} (corrupt or not a PNG)")
        if image.dtype != np.uint16 or image.ndim != 2:
            raise ValueError(f"depth map {path} is not a single-channel uint16 PNG (metres × 256)")
        return image.astype(np.float32) / 256.0
    depth = load_npy(path, "depth map")
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
        raise ValueError(f"depth map {path} is not an H×W array of numbers (shape {depth.shape}, {depth.dtype})")
    depth = depth.astype(np.float32)
    depth[~np.isfinite(depth)] = 0.0
    return depth
