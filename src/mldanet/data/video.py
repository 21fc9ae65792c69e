"""Frames of a video: decoding (shared by ``mldanet predict``) and extraction into a sequence folder.

``mldanet frames VIDEO --out DIR/<sequence>`` turns a drive's video into the folder layout of
:mod:`mldanet.data.folder`: every ``every``-th frame (or as many per second as ``fps`` asks),
named by its frame number in the video so that sorting gives the time order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mldanet.paths import require_file, require_writable_dir

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


def open_video(path: str | Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise ValueError(f"OpenCV cannot open the video {path} (not a video, or a codec this OpenCV lacks)")
    return capture


def video_frame_count(path: str | Path) -> int:
    """The frame count the container declares (0 when it does not say; decoding may find fewer)."""
    capture = cv2.VideoCapture(str(path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    return max(count, 0)


def video_frames(path: str | Path, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, H×W×3 uint8 RGB) of every ``every``-th frame; a video of no decodable frame is an error."""
    if every < 1:
        raise ValueError(f"every={every}: keep every 1st frame or more")
    capture = open_video(path)
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise ValueError(f"no frame of the video {path} could be decoded")


@dataclass(frozen=True)
class Extraction:
    out_dir: Path
    frames: int
    every: int
    video_fps: float
    size: tuple[int, int]  # (width, height)

    def __str__(self) -> str:
        rate = f", {self.video_fps / self.every:.3g} frames per second" if self.video_fps > 0 else ""
        return (f"wrote {self.frames} frames ({self.size[0]}×{self.size[1]}, every {self.every}. of the video{rate}) "
                f"to {self.out_dir}")


def extract_frames(
    video: str | Path,
    out_dir: str | Path,
    every: int | None = None,
    fps: float | None = None,
    img_ext: str = ".jpg",
    overwrite: bool = False,
    progress: bool = True,
) -> Extraction:
    """Write every ``every``-th frame of ``video`` (or ``fps`` frames a second) to ``out_dir/<frame number>.jpg``.

    A folder that already holds frames is refused unless ``overwrite``, which removes them first
    (frames of another rate left between the new ones would be false neighbours).
    """
    video = require_file(video, "video")
    if every is not None and fps is not None:
        raise ValueError("give --every or --fps, not both")
    if img_ext not in (".jpg", ".png"):
        raise ValueError(f"image extension {img_ext!r} is not .jpg or .png")
    capture = open_video(video)
    video_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    capture.release()
    if fps is not None:
        if not fps > 0:
            raise ValueError(f"--fps {fps} must be positive")
        if not video_fps > 0:
            raise ValueError(f"the video {video} does not say its frame rate: give --every N instead of --fps")
        every = max(1, round(video_fps / fps))
    every = 1 if every is None else every
    if every < 1:
        raise ValueError(f"--every {every} must be at least 1")
    out = require_writable_dir(out_dir, "output folder")
    existing = [p for p in out.iterdir() if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds frames: give another --out, or --overwrite")
    for path in existing:  # frames of another rate left between the new ones would be false neighbours
        path.unlink()
    total = math.ceil(video_frame_count(video) / every) or None
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if img_ext == ".jpg" else []
    written, size = 0, (0, 0)
    for index, rgb in tqdm(video_frames(video, every), total=total, desc="frames", unit="frame", disable=not progress):
        path = out / f"{index:06d}{img_ext}"
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params):
            raise OSError(f"could not write {path}")
        written += 1
        size = (rgb.shape[1], rgb.shape[0])
    return Extraction(out, written, every, video_fps, size)
