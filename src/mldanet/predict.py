"""Depth for image files, folders (recursive) and videos (what ``mldanet predict`` runs).

For every frame ``NAME`` three files are written under ``--out``:

* ``NAME_disp.npy``:  float32 scaled disparity (training units, ``disp_to_depth``'s range),
* ``NAME_depth.npy``: float32 depth; metres (baseline/0.1 / disparity: 5.4 / disparity on KITTI) for stereo-trained models (S, MS),
  relative depth (1 / disparity, unknown scale) for monocular ones (M),
* ``NAME_depth.png``: the depth as a picture: inverse depth colour-mapped with magma from 0 to its
  95th percentile, so near is bright and far is dark (monodepth2's pictures look the same).

The network runs at the checkpoint's training resolution (or ``--height/--width``); its output is
resized bilinearly back to each input's native size, so the maps line up with the input pixels.
``NAME`` is the file's stem; for files found in a folder it keeps their sub-folder (relative to the
folder given); video frames are ``<video stem>_<6-digit frame index>``. Names used twice in one
run get a ``_2``, ``_3``... suffix. Unreadable inputs are listed and skipped; the exit code is 1
when there was any.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from mldanet.data.video import VIDEO_EXTENSIONS, video_frame_count, video_frames

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


@dataclass
class PredictSummary:
    """What :func:`predict_paths` did: frame names written, inputs it could not read and why."""

    out_dir: Path
    names: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    metric: bool = True  # depth in metres (stereo-trained) rather than relative

    @property
    def frames(self) -> int:
        return len(self.names)


@dataclass
class _Source:
    path: Path
    name: str  # output stem (video frames append _<index>)
    video: bool


def collect_sources(inputs: Sequence[str | Path], failed: list[tuple[str, str]]) -> list[_Source]:
    """Expand files and folders (recursive, sorted) into images and videos; problems go to ``failed``."""
    sources = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            found = sorted(
                p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
            )
            if not found:
                failed.append((str(entry), "folder holds no images or videos"))
            for path in found:
                name = path.relative_to(entry).with_suffix("").as_posix()
                sources.append(_Source(path, name, path.suffix.lower() in VIDEO_EXTENSIONS))
        elif entry.is_file():
            sources.append(_Source(entry, entry.stem, entry.suffix.lower() in VIDEO_EXTENSIONS))
        else:
            failed.append((str(entry), "not found"))
    return sources


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


def _unique(name: str, used: set[str]) -> str:
    candidate, k = name, 1
    while candidate in used:
        k += 1
        candidate = f"{name}_{k}"
    used.add(candidate)
    return candidate


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
) -> PredictSummary:
    """Predict depth for ``inputs`` (image files, folders, videos) and write the maps under ``out_dir``."""
    from mldanet.data.images import resize_image
    from mldanet.evaluation.inference import predict_disparities
    from mldanet.models.checkpoint import load_depth_net
    from mldanet.device import resolve_device
    from mldanet.visualize import colorize_depth

    if every < 1:
        raise ValueError(f"--every {every} must be at least 1")
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size} must be at least 1")
    torch_device = resolve_device(device)
    net, config = load_depth_net(checkpoint, torch_device)
    height = height or config.data.height
    width = width or config.data.width
    for flag, size in (("--height", height), ("--width", width)):
        if size <= 0 or size % 32:
            raise ValueError(f"{flag} {size} must be a positive multiple of 32")
    summary = PredictSummary(out_dir=Path(out_dir), metric=config.train.metric)
    factor = config.depth_scale
    sources = collect_sources(inputs, summary.failed)
    total = sum(math.ceil(video_frame_count(s.path) / every) if s.video else 1 for s in sources)
    used: set[str] = set()

    def flush(batch: list[tuple[str, np.ndarray]]) -> None:
        tensors = [
            torch.from_numpy(np.ascontiguousarray(resize_image(rgb, height, width))).permute(2, 0, 1).float().div_(255.0)
            for _, rgb in batch
        ]
        disps = predict_disparities(
            net, tensors, batch_size=len(tensors), device=str(torch_device), post_process=post_process,
            progress=False, min_depth=config.model.min_depth, max_depth=config.model.max_depth,
        )
        for (name, rgb), disp in zip(batch, disps):
            native = cv2.resize(disp, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
            depth = (factor / native).astype(np.float32)
            name = _unique(name, used)
            stem = summary.out_dir / name
            stem.parent.mkdir(parents=True, exist_ok=True)
            np.save(f"{stem}_disp.npy", native.astype(np.float32))
            np.save(f"{stem}_depth.npy", depth)
            cv2.imwrite(f"{stem}_depth.png", cv2.cvtColor(colorize_depth(native), cv2.COLOR_RGB2BGR))
            summary.names.append(name)

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
