"""``mldanet frames``: a video's frames into a sequence folder that ``--dataset folder`` trains on."""

from __future__ import annotations

import argparse
import typing

from mldanet.config import ImageExt
from mldanet.data.video import extract_frames


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="the video file (any format this OpenCV decodes: .mp4, .avi, .mov, …)")
    parser.add_argument("--out", required=True, help="the sequence folder, e.g. DATA/drive_01 (refused if it holds frames)")
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--every", type=int, help="keep every N-th frame (default: all)")
    rate.add_argument("--fps", type=float, help="keep about this many frames per second (10 is KITTI's rate)")
    parser.add_argument("--img-ext", choices=typing.get_args(ImageExt), default=".jpg", help="frame format (default .jpg, quality 95)")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that already holds frames")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    summary = extract_frames(
        args.video, args.out, every=args.every, fps=args.fps, img_ext=args.img_ext, overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(summary)
    return 0
