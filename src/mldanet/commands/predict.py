"""``mldanet predict``: depth for images, folders and videos (see :mod:`mldanet.predict`)."""

from __future__ import annotations

import argparse
import sys
import typing

from mldanet.config import DeviceChoice
from mldanet.paths import require_writable_dir
from mldanet.predict import predict_paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive) and videos")
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (or run folder)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--batch-size", type=int, default=4, help="images per forward pass (default: 4)")
    parser.add_argument(
        "--device", choices=typing.get_args(DeviceChoice), default="auto", help="auto: CUDA when available (default)"
    )
    parser.add_argument("--height", type=int, help="network input height (default: the checkpoint's)")
    parser.add_argument("--width", type=int, help="network input width (default: the checkpoint's)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th video frame")
    parser.add_argument("--post-process", action="store_true", help="average with the flipped image's prediction")
    parser.add_argument("--right", action="store_true",
                        help="in sequence folders of the own-data layout, predict the right/ frames too")


def run(args: argparse.Namespace) -> int:
    require_writable_dir(args.out, "output folder --out")
    summary = predict_paths(
        args.checkpoint, args.inputs, args.out, batch_size=args.batch_size, device=args.device,
        height=args.height, width=args.width, every=args.every, post_process=args.post_process, right=args.right,
    )
    print(f"wrote {summary.frames} frames to {summary.out_dir}")
    if str(summary.skipped):
        print(f"left out of the folders: {summary.skipped}")
    if not summary.metric:
        print(
            "note: this checkpoint was trained monocularly (mode M): *_depth.npy is relative depth "
            "(1 / disparity, unknown scale), not metres"
        )
    if summary.failed:
        print(f"could not read {len(summary.failed)} input(s), skipped:", file=sys.stderr)
        for path, reason in summary.failed:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0
