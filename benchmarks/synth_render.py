"""Render time of the synthetic drive: one stereo frame at 1242×375, and a whole small dataset.

    python -m benchmarks.synth_render [--frames 24] [--no-write]

Renders frames spread over drive 0 (of the default 120) in this process, OpenCV on one thread as
in a worker process, and reports per stereo frame the median and 90th percentile of: the two
camera renders, the Velodyne scan, and the PNG/JPEG encoding (wall clock and this thread's CPU
time). Each stereo render is repeated three times and the fastest kept as well: on a machine
other jobs share, that is the closest to the renderer's own cost. Then times
``write_synthetic_drives`` end to end with 1 and 2 worker processes. Writes the
``synth_render`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.results import write_section

from mldanet.synth import Intrinsics, make_drive, right_camera_pose, write_synthetic_drives
from mldanet.synth.render import render_view, velodyne_scan
from mldanet.synth.textures import texture_atlas

WIDTH, HEIGHT = 1242, 375


def per_frame(frames: int) -> dict[str, np.ndarray]:
    """Per stereo frame and stage: wall-clock and this thread's CPU seconds (columns 0 and 1)."""
    cv2.setNumThreads(1)
    drive = make_drive(0, 0, 120)  # the default drive length; ``frames`` frames spread over it
    intrinsics = Intrinsics.for_size(WIDTH, HEIGHT)
    texture_atlas(0)
    stages = ("stereo render", "stereo render, fastest of 3", "velodyne scan", "jpg encode (2 images)",
              "png encode (2 images)")
    times: dict[str, list[tuple[float, float]]] = {stage: [] for stage in stages}

    def clock() -> np.ndarray:
        return np.array([time.perf_counter(), time.thread_time()])

    def render(pose: np.ndarray) -> tuple:
        return tuple(render_view(drive.scene, p, intrinsics, WIDTH, HEIGHT) for p in (pose, right_camera_pose(pose)))

    for pose in drive.poses[np.linspace(0, 119, frames).round().astype(int)]:
        start = clock()
        left, right = render(pose)
        times["stereo render"].append(clock() - start)
        repeats = [times["stereo render"][-1]]
        for _ in range(2):
            start = clock()
            render(pose)
            repeats.append(clock() - start)
        times["stereo render, fastest of 3"].append(min(repeats, key=lambda r: r[1]))
        start = clock()
        velodyne_scan(drive.scene, pose, intrinsics, left)
        times["velodyne scan"].append(clock() - start)
        start = clock()
        for view in (left, right):
            cv2.imencode(".jpg", view.rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        times["jpg encode (2 images)"].append(clock() - start)
        start = clock()
        for view in (left, right):
            cv2.imencode(".png", view.rgb[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
        times["png encode (2 images)"].append(clock() - start)
    return {stage: np.array(value) for stage, value in times.items()}


def p90(values: np.ndarray) -> float:
    return float(np.percentile(values, 90))


def end_to_end(frames: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        summary = write_synthetic_drives(tmp, drives=2, frames=frames, workers=workers, progress=False)
        return summary.seconds / (2 * frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24, help="stereo frames per measurement (default 24)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    times = per_frame(args.frames)
    rows = [
        "| " + " | ".join([key] + [f"{f(v[:, c]) * 1e3:.0f}" for c in (0, 1) for f in (np.median, p90)]) + " |"
        for key, v in times.items()
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    pipelines = {w: end_to_end(args.frames, w) for w in (1, 2) if w <= (os.cpu_count() or 1)}
    body = "\n".join([
        f"Drive 0 of seed 0 (120 frames), {args.frames} stereo frames spread over it at {WIDTH}×{HEIGHT}, "
        "one process, OpenCV on one thread; "
        f"ms per stereo frame (1-minute load average at the end: {load:.1f}; CPU time is this thread's, which "
        "other processes on the machine disturb less than the wall clock):",
        "",
        "| stage | wall median ms | wall p90 ms | CPU median ms | CPU p90 ms |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        "`write_synthetic_drives` end to end (2 drives × "
        f"{args.frames} frames, .jpg, render + Velodyne + encode + write, process start-up included):",
        "",
        "| workers | s per stereo frame |",
        "| --- | --- |",
        *[f"| {w} | {s:.3f} |" for w, s in pipelines.items()],
        "",
        f"Target: ≤ 0.2 s per stereo frame (render); measured median "
        f"{np.median(times['stereo render'][:, 0]):.3f} s wall in one pass, "
        f"{np.median(times['stereo render, fastest of 3'][:, 1]):.3f} s CPU for the fastest of three.",
    ])
    print(body)
    if not args.no_write:
        print(f"wrote {write_section('synth_render', body, title='Synthetic drive: render time')}")


if __name__ == "__main__":
    main()
