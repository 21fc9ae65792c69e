"""``mldanet synth``: render synthetic drives, KITTI raw or folder layout (see :mod:`mldanet.synth.writer`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mldanet.synth.writer import IMAGE_EXTENSIONS, LAYOUTS, default_workers, write_synthetic_drives


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="root folder of the output (a folder-layout --out must be new, empty or an earlier synth output)")
    parser.add_argument("--drives", type=int, default=4,
                        help="number of drives; the last is held out for testing (default 4)")
    parser.add_argument("--frames", type=int, default=120, help="stereo frames per drive (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="scene and texture seed; same seed, same bytes (default 0)")
    parser.add_argument("--width", type=int, default=1242, help="image width in pixels (default 1242, KITTI's)")
    parser.add_argument("--height", type=int, default=375, help="image height in pixels (default 375)")
    parser.add_argument("--workers", type=int, default=default_workers(), help="rendering processes (default: up to 2)")
    parser.add_argument("--img-ext", choices=IMAGE_EXTENSIONS, default=".jpg",
                        help="image format: .jpg (quality 95, as KITTI is used by monodepth2) or lossless .png")
    parser.add_argument("--layout", choices=LAYOUTS, default="kitti",
                        help="kitti: KITTI raw with calibration, Velodyne scans and splits (default); folder: the "
                             "layout of --dataset folder (frames, right/, dense depth/ maps, camera.yaml)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    summary = write_synthetic_drives(
        args.out, drives=args.drives, frames=args.frames, seed=args.seed, width=args.width, height=args.height,
        workers=args.workers, progress=not args.no_progress, img_ext=args.img_ext, layout=args.layout,
    )
    total = len(summary.drives) * summary.frames
    print(f"wrote {len(summary.drives)} drives × {summary.frames} stereo frames ({summary.width}×{summary.height}, "
          f"{summary.img_ext}) under {summary.root / summary.date} in {summary.seconds:.1f} s "
          f"({summary.seconds / total:.3f} s/frame)")
    if args.layout == "folder":
        print(f"camera: {summary.root / 'camera.yaml'}; train with: mldanet train --dataset folder --data-path {summary.root}")
        return 0
    print(f"test drive (held out): {summary.test_drive}")
    for name, path in summary.split_files.items():
        print(f"{name:>5} split: {path} ({sum(1 for _ in path.open())} lines)")
    print(f"poses and intrinsics: {summary.info_path}")
    return 0
