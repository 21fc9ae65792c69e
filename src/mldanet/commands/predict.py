"""``mldanet predict``: depth for images, folders and videos (see :mod:`mldanet.predict`)."""

from __future__ import annotations

import argparse
import sys
import typing

from mldanet.config import DeviceChoice
from mldanet.paths import require_writable_dir
from mldanet.pointcloud import DEFAULT_HFOV_DEGREES
from mldanet.predict import DEFAULT_MAX_DEPTH, predict_paths


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
    parser.add_argument(
        "--point-cloud", action="store_true",
        help="also write NAME.ply per frame: binary little-endian, x y z (metres for S/MS models, relative for M; "
             "x right, y down, z forward) and the image's colours, back-projected at the input's size with the "
             "checkpoint's camera (KITTI's for KITTI-trained models), or --intrinsics; a picture of unknown camera "
             f"(another shape than the checkpoint's) gets a {DEFAULT_HFOV_DEGREES:g}° horizontal field of view, "
             "square pixels and the principal point at the centre, with one warning",
    )
    parser.add_argument("--intrinsics", metavar="FILE",
                        help="with --point-cloud: the camera of the inputs, a camera file as --dataset folder reads "
                             "(YAML or JSON: K, the 3×3 matrix in pixels, and image_size [width, height])")
    parser.add_argument("--max-depth", type=float, metavar="DEPTH",
                        help="with --point-cloud: leave out points deeper than this, in the depth's units "
                             f"(sky and far points; default: {DEFAULT_MAX_DEPTH:g}, KITTI's evaluation cap in metres)")


def run(args: argparse.Namespace) -> int:
    require_writable_dir(args.out, "output folder --out")
    summary = predict_paths(
        args.checkpoint, args.inputs, args.out, batch_size=args.batch_size, device=args.device,
        height=args.height, width=args.width, every=args.every, post_process=args.post_process, right=args.right,
        point_cloud=args.point_cloud, intrinsics=args.intrinsics, max_depth=args.max_depth,
    )
    print(f"wrote {summary.frames} frames to {summary.out_dir}")
    if args.point_cloud:
        print(f"wrote {summary.point_clouds} point clouds (NAME.ply)"
              + (f", {summary.default_camera} of them with the default {DEFAULT_HFOV_DEGREES:g}° field of view"
                 if summary.default_camera else ""))
    if str(summary.skipped):
        print(f"left out of the folders: {summary.skipped}")
    if not summary.metric:
        print(
            "note: this checkpoint was trained monocularly (mode M): *_depth.npy is relative depth "
            "(1 / disparity, unknown scale), not metres"
            + (", and so are the point clouds' x y z" if args.point_cloud else "")
        )
    if summary.no_cloud:
        print(f"no point cloud for {len(summary.no_cloud)} frame(s) (their depth maps are written):", file=sys.stderr)
        for name, reason in summary.no_cloud:
            print(f"  {name}: {reason}", file=sys.stderr)
    if summary.failed:
        print(f"could not read {len(summary.failed)} input(s), skipped:", file=sys.stderr)
        for path, reason in summary.failed:
            print(f"  {path}: {reason}", file=sys.stderr)
    return 1 if summary.failed or summary.no_cloud else 0
