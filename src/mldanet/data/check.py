"""What ``mldanet check-data`` finds in a folder dataset (see :mod:`mldanet.data.folder`).

Every sequence is read the way training will read it: its camera file, the size of every frame
(headers only), its right images and depth maps when present, the neighbours each frame needs,
and how much the picture changes between neighbours. Frames where it barely changes (a parked
car, a traffic light) teach the network nothing — worse, with the camera still, a scene moving
with it looks infinitely far — and are the commonest cause of a custom run that learns nothing;
monodepth2 drops them from KITTI's splits by hand. ``write_splits`` writes split files without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mldanet.data.folder import (
    DEPTH_FOLDER,
    RIGHT_FOLDER,
    SPLITS_FOLDER,
    camera_file_for,
    find_sequences,
    generate_split,
    read_camera_file,
    target_frames,
)
from mldanet.data.images import read_image_size
from mldanet.data.splits import SPLIT_FILES
from mldanet.paths import require_dir, write_atomic
from mldanet.types import STEREO, FrameId

# Mean absolute grey-level change (0-255) between a frame and its neighbour below which the
# camera is taken to stand still. Image noise of a still camera gives 0.5-1.5; a car driving at
# walking pace through a street at 10 fps gives 5 and more.
STATIC_THRESHOLD = 2.0
STATIC_SIZE = (96, 32)  # the frames are compared at this (width, height): noise averages out, speed matters


@dataclass
class SequenceReport:
    """What was found in one sequence; ``problems`` stop training, ``warnings`` do not."""

    name: str
    frames: int = 0
    size: tuple[int, int] | None = None  # (width, height) of its frames
    camera: Path | None = None
    right: int = 0
    depth: int = 0
    targets: int = 0
    static: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class DataReport:
    root: Path
    sequences: list[SequenceReport]
    splits: dict[str, int]  # part -> lines (from split files, or as they would be generated)
    splits_generated: bool

    @property
    def problems(self) -> list[str]:
        return [f"{s.name}: {p}" for s in self.sequences for p in s.problems] or (
            [f"no sequence folder with frames (.jpg, .jpeg, .png) under {self.root}"] if not self.sequences else []
        )

    def lines(self) -> list[str]:
        """The report as the command prints it."""
        out = [f"{self.root}: {len(self.sequences)} sequences, {sum(s.frames for s in self.sequences)} frames"]
        for s in self.sequences:
            size = f"{s.size[0]}×{s.size[1]}" if s.size else "?"
            parts = [f"{s.frames} frames {size}", f"camera {s.camera}" if s.camera else "no camera"]
            if s.right:
                parts.append(f"{s.right} right")
            if s.depth:
                parts.append(f"{s.depth} depth maps")
            parts.append(f"{s.targets} usable targets")
            if s.static:
                parts.append(f"{len(s.static)} static ({100 * len(s.static) / max(s.targets, 1):.0f} %)")
            out.append(f"  {s.name}: " + ", ".join(parts))
            out += [f"    problem: {p}" for p in s.problems]
            out += [f"    warning: {w}" for w in s.warnings]
        origin = "generated (no split files)" if self.splits_generated else f"from {self.root / SPLITS_FOLDER}"
        out.append("splits " + origin + ": " + ", ".join(f"{part} {n}" for part, n in self.splits.items()))
        static = sum(len(s.static) for s in self.sequences)
        if static:
            out.append(
                f"{static} target frames are static (the picture changes by less than {STATIC_THRESHOLD:g} grey levels): "
                "`mldanet check-data --write-splits` writes split files without them"
            )
        return out


def shrunk_grey(path: Path) -> np.ndarray:
    """A frame in grey levels at :data:`STATIC_SIZE` (float32)."""
    image = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if image is None:
        raise ValueError(f"cannot decode image (corrupt or not an image): {path}")
    return cv2.resize(image, STATIC_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)



def check_sequence(
    root: Path, name: str, frames: list[str], frame_ids: tuple[FrameId, ...], frame_step: int, intrinsics: str
) -> SequenceReport:
    report = SequenceReport(name, frames=len(frames))
    folder = root / name
    try:
        camera_path = camera_file_for(root, name, intrinsics)
        camera = read_camera_file(camera_path)
        report.camera = camera_path
    except (OSError, ValueError) as error:
        report.problems.append(str(error))
        camera = None
    sizes: dict[tuple[int, int], str] = {}
    for frame in frames:
        try:
            height, width = read_image_size(folder / frame)
        except (OSError, ValueError) as error:
            report.problems.append(str(error))
            continue
        sizes.setdefault((width, height), frame)
    if len(sizes) > 1:
        listed = ", ".join(f"{w}×{h} ({frame})" for (w, h), frame in list(sizes.items())[:3])
        report.problems.append(f"frames of different sizes: {listed}; a sequence is one camera at one size")
    if sizes:
        report.size = next(iter(sizes))
        if camera is not None:
            try:
                camera.check_frame_size(folder / sizes[report.size], report.size[::-1])
            except ValueError as error:
                report.problems.append(str(error))
    stereo = STEREO in frame_ids
    right = folder / RIGHT_FOLDER
    if right.is_dir():
        report.right = sum(1 for f in frames if (right / f).is_file())
        if report.right < len(frames):
            report.warnings.append(f"{len(frames) - report.right} frames have no right image in {right}")
    elif stereo:
        report.problems.append(f"no right images ({right}): modes S and MS need the stereo partner; train with --mode M")
    if stereo and camera is not None and not camera.baseline > 0:
        report.problems.append(f"{camera.path} gives no baseline, which modes S and MS need")
    depth = folder / DEPTH_FOLDER
    if depth.is_dir():
        stems = {Path(f).stem for f in frames}
        report.depth = sum(1 for f in depth.iterdir() if f.suffix in (".npy", ".png") and f.stem in stems)
    temporal = [int(f) * frame_step for f in frame_ids if f != STEREO and f != 0]
    targets = target_frames(name, frames, root, frame_ids, frame_step)
    report.targets = len(targets)
    if not targets:
        report.problems.append(
            f"no frame has every neighbour (frames {', '.join(f'{o:+d}' for o in temporal) or 'none'}"
            + (", right image" if stereo else "") + f") among its {len(frames)} frames"
        )
    if temporal:
        position = {f: i for i, f in enumerate(frames)}
        step = max(temporal)
        # Each frame is compared twice (as an earlier target's neighbour, then as a target): decoded once.
        shrunk: dict[str, np.ndarray] = {}

        def grey(name: str) -> np.ndarray:
            if name not in shrunk:
                shrunk[name] = shrunk_grey(folder / name)
            return shrunk[name]

        for frame in targets:
            neighbour = frames[position[frame] + step]
            try:
                change = float(np.abs(grey(frame) - grey(neighbour)).mean())
            except ValueError as error:
                report.problems.append(str(error))
                continue
            finally:
                shrunk.pop(frame, None)  # no later target compares with it
            if change < STATIC_THRESHOLD:
                report.static.append(frame)
        if targets and len(report.static) > len(targets) / 2:
            report.warnings.append(
                f"{len(report.static)} of {len(targets)} target frames are static: the camera hardly moves"
                + (" (a larger --frame-step compares frames further apart)" if frame_step == 1 else "")
            )
    return report


def check_folder(
    root: str | Path,
    frame_ids: tuple[FrameId, ...] = (0, -1, 1),
    frame_step: int = 1,
    intrinsics: str = "",
    val_every: int = 10,
    progress: bool = True,
) -> DataReport:
    """Check every sequence under ``root`` for training with ``frame_ids`` (see the module docstring)."""
    root = require_dir(root, "data path")
    if frame_step < 1:
        raise ValueError(f"--frame-step {frame_step} must be at least 1")
    sequences = find_sequences(root)
    reports = [
        check_sequence(root, name, frames, frame_ids, frame_step, intrinsics)
        for name, frames in tqdm(sequences.items(), desc="check-data", unit="sequence", disable=not progress)
    ]
    split_dir = root / SPLITS_FOLDER
    generated = not any((split_dir / name).is_file() for name in SPLIT_FILES.values())
    if generated:
        splits = {part: len(lines) for part, lines in generate_split(root, frame_ids, frame_step, val_every).items()}
    else:
        splits = {
            part: sum(1 for line in (split_dir / name).read_text().splitlines() if line.strip())
            for part, name in SPLIT_FILES.items() if (split_dir / name).is_file()
        }
    return DataReport(root, reports, splits, generated)


def write_splits(report: DataReport, frame_ids: tuple[FrameId, ...], frame_step: int, val_every: int, overwrite: bool) -> list[Path]:
    """Write ``splits/{train,val,test}_files.txt`` under the report's root, without its static frames."""
    split_dir = report.root / SPLITS_FOLDER
    existing = [split_dir / name for name in SPLIT_FILES.values() if (split_dir / name).is_file()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists: --overwrite replaces the split files")
    static = _static_frames(report.sequences)
    lines = generate_split(report.root, frame_ids, frame_step, val_every, exclude=static)
    split_dir.mkdir(exist_ok=True)
    written = []
    for part, name in SPLIT_FILES.items():
        path = split_dir / name
        write_atomic(path, lambda handle, part=part: handle.write("".join(f"{line}\n" for line in lines[part]).encode()))
        written.append(path)
    return written


def _static_frames(sequences: Iterable[SequenceReport]) -> set[tuple[str, str]]:
    return {(s.name, frame) for s in sequences for frame in s.static}
