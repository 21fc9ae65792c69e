"""Depth for image files, folders (recursive) and videos (what ``mldanet predict`` runs).

For every frame ``NAME`` three files (four with point clouds) are written under ``--out``:

* ``NAME_disp.npy``:  float32 scaled disparity, the network's output in training units: 1 / depth
  in units of one tenth of the stereo baseline, within [1 / model.max_depth, 1 / model.min_depth]
  ([0.01, 10] by default); metric depth is ``depth_scale / disp`` (5.4 / disp on KITTI),
* ``NAME_depth.npy``: float32 depth; metres (baseline/0.1 / disparity: 5.4 / disparity on KITTI) for stereo-trained models (S, MS),
  relative depth (1 / disparity, unknown scale) for monocular ones (M),
* ``NAME_depth.png``: the depth as a picture: inverse depth colour-mapped with magma from 0 to its
  95th percentile, so near is bright and far is dark (monodepth2's pictures look the same),
* ``NAME.ply`` (``point_cloud=True``): the depth map as coloured 3-D points (:mod:`mldanet.pointcloud`:
  binary little-endian, float x y z in the depth's units, camera axes x right, y down, z forward;
  uchar red green blue from the image), without depths beyond ``max_depth`` (sky) or non-finite ones.

A point cloud is back-projected at the depth map's size (the input's) with the camera scaled to it:
``intrinsics`` (a camera file as ``--dataset folder`` reads it, :func:`mldanet.data.folder.read_camera_file`)
when given, else the checkpoint's camera (KITTI's normalised K for ``data.dataset=kitti``, the run's
camera file for ``folder``) for pictures of its shape (aspect ratio within 10 %); a picture of
another shape, or any picture when the checkpoint's camera is unknown, gets the default camera of
:func:`mldanet.pointcloud.default_intrinsics` (a 60° horizontal field of view, square pixels,
principal point at the centre), with one warning per run. A frame that does not fit the
``intrinsics`` camera (another aspect ratio) gets no point cloud: it is listed in
:attr:`PredictSummary.no_cloud` (its depth maps are written; the command's exit code is 1).

The network runs at the checkpoint's training resolution (or ``--height/--width``); its output is
resized bilinearly back to each input's native size, so the maps line up with the input pixels.
``NAME`` is the file's stem; for files found in a folder it keeps their sub-folder (relative to the
folder given), under the folder's own name when the run has several inputs, so that ``--out``
mirrors them; video frames are ``<video stem>_<6-digit frame index>``. Two inputs that would write
the same ``NAME`` are refused before anything is written, naming both (never a silent suffix).
Unreadable inputs are listed and skipped; the exit code is 1 when there was any.

Predictions never feed on themselves: every file written is listed in ``--out``'s
:data:`MANIFEST` (kept across runs), and a folder walk skips the files any manifest under it
lists, so ``--out`` may be the input folder. A walk also skips what is not a photo: 16-bit and
single-channel PNGs (depth maps, masks), and in a sequence folder of the own-data layout
(:mod:`mldanet.data.folder`) its ``depth/`` ground truth and, unless asked, its ``right/`` frames.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from mldanet.config import Config
from mldanet.data.base import trained_camera
from mldanet.data.folder import DEPTH_FOLDER, FRAME_SUFFIXES, RIGHT_FOLDER, Camera, read_camera_file
from mldanet.data.video import VIDEO_EXTENSIONS, video_frame_count, video_frames
from mldanet.pointcloud import DEFAULT_HFOV_DEGREES, default_intrinsics, depth_to_points, pixel_intrinsics, write_ply

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
MANIFEST = ".mldanet-predictions.txt"  # one written file per line, relative to the manifest's folder
OUTPUT_SUFFIXES = ("_disp.npy", "_depth.npy", "_depth.png")
POINT_CLOUD_SUFFIX = ".ply"
DEFAULT_MAX_DEPTH = 80.0  # point clouds: depths beyond are cut (KITTI's evaluation cap, in metres)
# A picture within this aspect ratio of the checkpoint's camera is taken as that camera's, resized:
# the networks train on KITTI's 1242×375 frames resized to 1024×320 (3.5 % off) or 640×192.
CAMERA_ASPECT_TOLERANCE = 0.1

logger = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    """What :func:`predict_paths` did: frame names written, inputs it could not read and why."""

    out_dir: Path
    names: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    metric: bool = True  # depth in metres (stereo-trained) rather than relative
    skipped: "Skipped" = field(default_factory=lambda: Skipped())
    point_clouds: int = 0  # NAME.ply files written
    default_camera: int = 0  # of which back-projected with the default field of view
    no_cloud: list[tuple[str, str]] = field(default_factory=list)  # frames refused a point cloud, and why

    @property
    def frames(self) -> int:
        return len(self.names)


@dataclass
class _Source:
    path: Path
    name: str  # output stem (video frames append _<index>)
    video: bool


def not_a_photo(path: Path) -> str | None:
    """Why ``path`` is not a photo (a 16-bit or single-channel PNG, from its header), or None."""
    if path.suffix.lower() != ".png":
        return None
    try:
        with open(path, "rb") as handle:
            header = handle.read(26)
    except OSError:
        return None  # the reader names it
    if len(header) < 26 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        return None
    bit_depth, colour_type = header[24], header[25]
    if bit_depth == 16:
        return "a 16-bit PNG (a depth map?), not a photo"
    if colour_type in (0, 4):
        return "a single-channel PNG, not a photo"
    return None


def listed_outputs(manifest: Path) -> set[Path]:
    """The files a prediction manifest lists (absolute paths); an unreadable one lists none."""
    try:
        names = manifest.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    return {(manifest.parent / name).resolve() for name in names if name}


@dataclass
class Skipped:
    """Files a folder walk left out, by reason (reported once, not as failures)."""

    predictions: int = 0
    not_photos: int = 0
    ground_truth: int = 0
    right_frames: int = 0

    def __str__(self) -> str:
        parts = [
            f"{n} {what}" for n, what in (
                (self.predictions, "earlier predictions"), (self.not_photos, "16-bit or single-channel PNGs"),
                (self.ground_truth, f"ground-truth maps in {DEPTH_FOLDER}/"),
                (self.right_frames, f"right-camera frames in {RIGHT_FOLDER}/ (--right takes them)"),
            ) if n
        ]
        return ", ".join(parts)


def walk_folder(entry: Path, right: bool, skipped: Skipped) -> list[Path]:
    """The images and videos under ``entry`` (sorted), without what :class:`Skipped` counts."""
    written: set[Path] = set()
    found = []
    for folder, subfolders, files in os.walk(entry):
        folder = Path(folder)
        if MANIFEST in files:  # top-down: read before the files it lists, here and below
            written |= listed_outputs(folder / MANIFEST)
        is_sequence = any(Path(name).suffix.lower() in FRAME_SUFFIXES for name in files)
        for sub in list(subfolders):
            if is_sequence and sub == DEPTH_FOLDER:
                skipped.ground_truth += sum(len(f) for _, _, f in os.walk(folder / sub))
                subfolders.remove(sub)
            elif is_sequence and sub == RIGHT_FOLDER and not right:
                skipped.right_frames += sum(len(f) for _, _, f in os.walk(folder / sub))
                subfolders.remove(sub)
        for name in files:
            path = folder / name
            if path.suffix.lower() not in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS or name == MANIFEST:
                continue
            if path.resolve() in written:
                skipped.predictions += 1
            elif not_a_photo(path):
                skipped.not_photos += 1
            else:
                found.append(path)
    return sorted(found)


def collect_sources(
    inputs: Sequence[str | Path], failed: list[tuple[str, str]], right: bool = False, skipped: Skipped | None = None
) -> list[_Source]:
    """Expand files and folders (recursive, sorted) into images and videos; problems go to ``failed``,
    what a folder walk leaves out to ``skipped``."""
    skipped = Skipped() if skipped is None else skipped
    sources = []
    mirror = len(inputs) > 1  # each folder's outputs under its name: --out shows where they came from
    for entry in map(Path, inputs):
        if entry.is_dir():
            found = walk_folder(entry, right, skipped)
            if not found:
                failed.append((str(entry), "folder holds no images or videos" + (f" (skipped: {skipped})" if str(skipped) else "")))
            for path in found:
                name = path.relative_to(entry).with_suffix("").as_posix()
                if mirror:
                    name = f"{entry.resolve().name}/{name}"
                sources.append(_Source(path, name, path.suffix.lower() in VIDEO_EXTENSIONS))
        elif entry.is_file():
            reason = not_a_photo(entry)
            if reason:
                failed.append((str(entry), reason))
            else:
                sources.append(_Source(entry, entry.stem, entry.suffix.lower() in VIDEO_EXTENSIONS))
        else:
            failed.append((str(entry), "not found"))
    refuse_shared_names(sources)
    return sources


def refuse_shared_names(sources: Sequence[_Source]) -> None:
    """A ``ValueError`` naming both inputs when two would write the same outputs."""
    first: dict[str, Path] = {}
    for source in sources:
        if source.name in first and first[source.name].resolve() != source.path.resolve():
            raise ValueError(
                f"{first[source.name]} and {source.path} would both write {source.name}_depth.*: "
                "rename one, pass their folders (each gets its own sub-folder of --out), or predict them in separate runs"
            )
        first.setdefault(source.name, source.path)


def record_outputs(out_dir: Path, names: Sequence[str], suffixes: Sequence[str] = OUTPUT_SUFFIXES) -> None:
    """Append the files of ``names`` (one per suffix) to ``out_dir``'s manifest (earlier runs' entries stay)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / MANIFEST, "a", encoding="utf-8") as handle:
        handle.writelines(f"{name}{suffix}\n" for name in names for suffix in suffixes)


@dataclass(frozen=True)
class CloudCamera:
    """The camera point clouds are back-projected with.

    normalised_K: 4×4 (row 0 ÷ width, row 1 ÷ height) for pictures of ``image_size`` (width,
    height) resized; None when no camera is known. ``given`` is the ``--intrinsics`` camera, whose
    misfits are refused rather than defaulted; ``unknown`` says why there is no camera.
    """

    normalised_K: np.ndarray | None
    image_size: tuple[int, int]
    source: str
    given: Camera | None = None
    unknown: str = ""

    def intrinsics(self, name: str, height: int, width: int) -> tuple[np.ndarray, str | None]:
        """(3×3 pixel K for a ``height``×``width`` frame, None) with this camera; for a frame it does not
        fit, (the default camera's K, why). A frame that does not fit the ``--intrinsics`` camera is a
        ValueError naming the frame and the camera file."""
        if self.given is not None:
            self.given.check_frame_size(Path(name), (height, width))
            return pixel_intrinsics(self.normalised_K, height, width), None
        if self.normalised_K is None:
            return default_intrinsics(height, width), self.unknown
        aspect, expected = width / height, self.image_size[0] / self.image_size[1]
        if abs(aspect / expected - 1) > CAMERA_ASPECT_TOLERANCE:
            return default_intrinsics(height, width), (
                f"{name} is {width}×{height} (width/height {aspect:.2f}), not the shape of the checkpoint's camera "
                f"({self.source}: {self.image_size[0]}×{self.image_size[1]}, {expected:.2f})"
            )
        return pixel_intrinsics(self.normalised_K, height, width), None


def cloud_camera(config: Config, intrinsics: str | Path | None = None) -> CloudCamera:
    """The camera of ``--intrinsics`` (a camera file, :func:`mldanet.data.folder.read_camera_file`), else
    the checkpoint's, as its dataset tells it (:meth:`mldanet.data.base.FrameDataset.trained_camera`:
    KITTI's normalised K, a folder run's camera file when it is still there)."""
    if intrinsics:
        camera = read_camera_file(intrinsics)
        return CloudCamera(camera.normalised_K, camera.image_size, f"camera file {camera.path}", given=camera)
    trained = trained_camera(config.data)
    if trained.normalised_K is None:
        return CloudCamera(None, (0, 0), "none", unknown=f"the checkpoint's camera is unknown ({trained.unknown})")
    return CloudCamera(trained.normalised_K, trained.image_size, f"{trained.source} (data.dataset={config.data.dataset})")


def iter_frames(sources: Sequence[_Source], every: int, failed: list[tuple[str, str]]) -> Iterator[tuple[str, np.ndarray]]:
    """(name, H×W×3 uint8 RGB) for every image and every ``every``-th video frame."""
    from mldanet.data.images import load_image

    for source in sources:
        try:
            if source.video:
                for index, rgb in video_frames(source.path, every):
                    yield f"{source.name}_{index:06d}", rgb
            else:
                yield source.name, load_image(source.path)
        except (OSError, ValueError) as error:
            failed.append((str(source.path), str(error)))


def predict_paths(
    checkpoint: str | Path,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    batch_size: int = 4,
    device: str = "auto",
    height: int | None = None,
    width: int | None = None,
    every: int = 1,
    post_process: bool = False,
    progress: bool = True,
    right: bool = False,
    point_cloud: bool = False,
    intrinsics: str | Path | None = None,
    max_depth: float | None = None,
) -> PredictSummary:
    """Predict depth for ``inputs`` (image files, folders, videos) and write the maps under ``out_dir``.

    point_cloud: also write ``NAME.ply`` (see the module docstring), with the camera of the camera
    file ``intrinsics`` when given, without points deeper than ``max_depth`` (the depth's units:
    metres for S/MS models; default 80).
    """
    from mldanet.data.images import resize_image
    from mldanet.evaluation.inference import predict_disparities
    from mldanet.models.checkpoint import load_depth_net
    from mldanet.device import resolve_device
    from mldanet.visualize import colorize_depth

    if every < 1:
        raise ValueError(f"--every {every} must be at least 1")
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size} must be at least 1")
    if not point_cloud and (intrinsics or max_depth is not None):
        raise ValueError(f"{'--intrinsics' if intrinsics else '--max-depth'} is for point clouds: add --point-cloud")
    max_depth = DEFAULT_MAX_DEPTH if max_depth is None else max_depth
    if not (math.isfinite(max_depth) and max_depth > 0):
        raise ValueError(f"--max-depth {max_depth:g} must be a positive number")
    torch_device = resolve_device(device)
    net, config = load_depth_net(checkpoint, torch_device)
    camera = cloud_camera(config, intrinsics) if point_cloud else None
    units = "metres" if config.train.metric else "relative units (mode M: unknown scale), not metres"
    warned = False
    height = height or config.data.height
    width = width or config.data.width
    for flag, size in (("--height", height), ("--width", width)):
        if size <= 0 or size % 32:
            raise ValueError(f"{flag} {size} must be a positive multiple of 32")
    summary = PredictSummary(out_dir=Path(out_dir), metric=config.train.metric)
    factor = config.depth_scale
    sources = collect_sources(inputs, summary.failed, right, summary.skipped)
    total = sum(math.ceil(video_frame_count(s.path) / every) if s.video else 1 for s in sources)

    def write_cloud(name: str, stem: Path, depth: np.ndarray, rgb: np.ndarray) -> None:
        """``stem``.ply of an H×W depth map and its H×W×3 uint8 image, or the reason in ``no_cloud``."""
        nonlocal warned
        try:
            K, defaulted = camera.intrinsics(name, *depth.shape)
        except ValueError as error:
            summary.no_cloud.append((name, str(error)))
            return
        if defaulted:
            summary.default_camera += 1
            if not warned:
                warned = True
                logger.warning(
                    "%s: its point cloud, and those of every other such frame in this run, use the default camera "
                    "(%g° horizontal field of view, square pixels, principal point at the centre); "
                    "give --intrinsics FILE (a camera file with K and image_size) for the true one",
                    defaulted, DEFAULT_HFOV_DEGREES,
                )
        points, mask = depth_to_points(depth, K, max_depth)
        source = f"default, {DEFAULT_HFOV_DEGREES:g} deg horizontal field of view" if defaulted else camera.source
        write_ply(f"{stem}{POINT_CLOUD_SUFFIX}", points, rgb[mask], [
            f"mldanet predict: {name}; x y z in {units}; points deeper than {max_depth:g} left out",
            "axes: camera frame, x right, y down, z forward (OpenCV), origin at the camera centre",
            f"camera: {source}; fx {K[0, 0]:.6g} fy {K[1, 1]:.6g} cx {K[0, 2]:.6g} cy {K[1, 2]:.6g} "
            f"px at {depth.shape[1]}x{depth.shape[0]}",
        ])
        summary.point_clouds += 1

    def flush(batch: list[tuple[str, np.ndarray]]) -> None:
        tensors = [
            torch.from_numpy(np.ascontiguousarray(resize_image(rgb, height, width))).permute(2, 0, 1).float().div_(255.0)
            for _, rgb in batch
        ]
        disps = predict_disparities(
            net, tensors, batch_size=len(tensors), device=str(torch_device), post_process=post_process,
            progress=False, min_depth=config.model.min_depth, max_depth=config.model.max_depth,
        )
        names = [name for name, _ in batch]
        # Listed before they are written: a run stopped midway leaves no file a later walk would take for a photo.
        record_outputs(summary.out_dir, names, OUTPUT_SUFFIXES + ((POINT_CLOUD_SUFFIX,) if camera is not None else ()))
        for name, (_, rgb), disp in zip(names, batch, disps):
            native = cv2.resize(disp, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
            depth = (factor / native).astype(np.float32)
            stem = summary.out_dir / name
            stem.parent.mkdir(parents=True, exist_ok=True)
            np.save(f"{stem}_disp.npy", native.astype(np.float32))
            np.save(f"{stem}_depth.npy", depth)
            cv2.imwrite(f"{stem}_depth.png", cv2.cvtColor(colorize_depth(native), cv2.COLOR_RGB2BGR))
            summary.names.append(name)
            if camera is not None:
                write_cloud(name, stem, depth, rgb)

    pending: list[tuple[str, np.ndarray]] = []
    with tqdm(total=total, desc="predict", unit="frame", disable=not progress) as bar:
        for frame in iter_frames(sources, every, summary.failed):
            pending.append(frame)
            if len(pending) == batch_size:
                flush(pending)
                bar.update(len(pending))
                pending = []
        if pending:
            flush(pending)
            bar.update(len(pending))
    return summary
