"""What ``mldanet check-data`` finds in a folder dataset (see :mod:`mldanet.data.folder`).

Every sequence is read the way training will read it: its camera file, the size of every frame
(headers only), its right images and depth maps when present, the neighbours each frame needs,
and how much the picture changes between neighbours. Every depth map is read by the function
validation and ``evaluate`` read it with (:func:`mldanet.data.folder.read_frame_depth`): one file
per frame, decoded, in metres, at its frame's size or that size scaled; the report gives each
sequence's range of depths (1st and 99th percentile) and the fraction of pixels in the scored range.
Frames where the picture barely changes (a parked car, a traffic light) teach the network
nothing — worse, with the camera still, a scene moving with it looks infinitely far — and are
the commonest cause of a custom run that learns nothing;
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
    SCORED_DEPTH,
    SPLITS_FOLDER,
    DepthMapError,
    camera_file_for,
    depth_map_path,
    find_sequences,
    generate_split,
    read_camera_file,
    read_frame_depth,
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
DEPTH_SAMPLES = 4096  # valid depths kept per map for a sequence's percentiles (memory stays small)


@dataclass
class SequenceReport:
    """What was found in one sequence; ``problems`` stop training, ``warnings`` do not."""

    name: str
    frames: int = 0
    size: tuple[int, int] | None = None  # (width, height) of its frames
    camera: Path | None = None
    right: int = 0
    depth: int = 0
    depth_range: tuple[float, float] | None = None  # 1st and 99th percentile of the valid depths, metres
    depth_valid: float | None = None  # fraction of the depth maps' pixels in the scored range
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
                parts.append(f"{s.depth} depth maps" + (
                    f" ({s.depth_range[0]:.3g}-{s.depth_range[1]:.3g} m from 1st to 99th percentile, "
                    f"{100 * s.depth_valid:.0f} % of pixels valid)" if s.depth_range else ""
                ))
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
    if (folder / DEPTH_FOLDER).is_dir():
        check_depth_maps(report, root, frames, camera.depth_scale if camera is not None else None)
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


def check_depth_maps(report: SequenceReport, root: Path, frames: list[str], depth_scale: float | None) -> None:
    """Read every depth map of the sequence as evaluation will (:func:`read_frame_depth`) into ``report``:
    the count, the range and valid fraction, a problem per kind of refusal (the first map named, the
    rest counted) and the warnings, each once."""
    refused: dict[str, tuple[str, int]] = {}  # kind -> (first message, count)
    notes: dict[str, str] = {}
    samples, valid, pixels, empty = [], 0, 0, []
    for frame in frames:
        try:
            path = depth_map_path(root, report.name, frame)
            if not path.is_file():
                continue
            report.depth += 1
            read = read_frame_depth(root, report.name, frame, depth_scale)
        except (OSError, ValueError) as error:
            kind = error.kind if isinstance(error, DepthMapError) else "format"
            report.depth += kind == "files"  # the frame has depth maps, two
            first, count = refused.get(kind, (str(error), 0))
            refused[kind] = (first, count + 1)
            continue
        scored = read.depth[(read.depth > SCORED_DEPTH[0]) & (read.depth < SCORED_DEPTH[1])]
        valid, pixels = valid + scored.size, pixels + read.depth.size
        if not scored.size:
            empty.append(read.path)
        samples.append(scored[:: max(1, scored.size // DEPTH_SAMPLES)])
        if read.note:
            notes.setdefault("units", read.note)
        if read.scale is not None:
            height, width = read.depth.shape
            notes.setdefault(
                "scale", f"depth maps such as {read.path} ({width}×{height}) are their frame's size × {read.scale:.3g}: "
                "scored as the frame's picture scaled (fine if they are)",
            )
    for first, count in refused.values():
        report.problems.append(first + (f" ({count - 1} more depth maps of {report.name} alike)" if count > 1 else ""))
    if pixels:
        report.depth_valid = valid / pixels
    if valid:
        report.depth_range = tuple(float(v) for v in np.percentile(np.concatenate(samples), [1, 99]))
    elif pixels and not refused:
        report.problems.append(
            f"none of its {len(empty)} depth maps (such as {empty[0]}) has a pixel between {SCORED_DEPTH[0]:g} and "
            f"{SCORED_DEPTH[1]:g} m: nothing to score; 0 marks an unknown depth, the rest must be metres "
            "(or set depth_scale in camera.yaml)"
        )
    if valid and empty:
        report.warnings.append(
            f"{len(empty)} depth maps have no pixel between {SCORED_DEPTH[0]:g} and {SCORED_DEPTH[1]:g} m (first: "
            f"{empty[0]}): evaluation skips them"
        )
    report.warnings.extend(notes.values())


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
