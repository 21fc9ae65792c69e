"""Video frames: extraction into a sequence folder, the frame rate, refusing to overwrite."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mldanet.data.video import extract_frames, video_frame_count, video_frames


def write_video(path: Path, frames: int = 12, fps: float = 30.0) -> list[np.ndarray]:
    """An MJPG video whose frame i is a flat grey of level 20·i (survives compression to ±3)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    images = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(frames)]
    for image in images:
        writer.write(image)
    writer.release()
    return images


def test_every_nth_frame_is_written_under_its_number(tmp_path):
    video = tmp_path / "drive.avi"
    write_video(video)
    assert video_frame_count(video) == 12
    summary = extract_frames(video, tmp_path / "seq", every=5, progress=False)
    names = sorted(p.name for p in (tmp_path / "seq").iterdir())
    assert names == ["000000.jpg", "000005.jpg", "000010.jpg"] and summary.frames == 3 and summary.size == (64, 48)
    for name in names:
        level = int(name[:6]) * 20
        assert abs(float(cv2.imread(str(tmp_path / "seq" / name)).mean()) - level) < 4


def test_fps_picks_the_step_from_the_video_rate(tmp_path):
    video = tmp_path / "drive.avi"
    write_video(video, fps=30.0)
    summary = extract_frames(video, tmp_path / "seq", fps=10, img_ext=".png", progress=False)
    assert summary.every == 3 and summary.frames == 4
    assert "10 frames per second" in str(summary)


def test_a_folder_with_frames_is_not_overwritten(tmp_path):
    video = tmp_path / "drive.avi"
    write_video(video)
    extract_frames(video, tmp_path / "seq", every=4, progress=False)
    before = (tmp_path / "seq" / "000000.jpg").read_bytes()
    with pytest.raises(FileExistsError, match="already holds frames: give another --out, or --overwrite"):
        extract_frames(video, tmp_path / "seq", every=2, progress=False)
    assert (tmp_path / "seq" / "000000.jpg").read_bytes() == before
    assert extract_frames(video, tmp_path / "seq", every=3, overwrite=True, progress=False).frames == 4
    # the every-4th frames are gone: left between the new ones they would be false neighbours
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == ["000000.jpg", "000003.jpg", "000006.jpg", "000009.jpg"]


def test_bad_videos_are_named(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match=f"cannot open the video {fake}"):
        list(video_frames(fake))
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        extract_frames(tmp_path / "missing.mp4", tmp_path / "out", progress=False)
    video = tmp_path / "drive.avi"
    write_video(video)
    with pytest.raises(ValueError, match="--every or --fps, not both"):
        extract_frames(video, tmp_path / "out", every=2, fps=3, progress=False)
    with pytest.raises(ValueError, match="--fps -1"):
        extract_frames(video, tmp_path / "out", fps=-1, progress=False)
    with pytest.raises(ValueError, match="--every 0 must be at least 1"):
        extract_frames(video, tmp_path / "out", every=0, progress=False)
