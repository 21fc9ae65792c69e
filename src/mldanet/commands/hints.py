"""``mldanet hints``: fused-SGM depth hints of a split's images (see :mod:`mldanet.data.depth_hints`)."""

from __future__ import annotations

import argparse
import os
import typing

from mldanet.config import ImageExt
from mldanet.data.depth_hints import compute_hints
from mldanet.data.splits import read_split_lines
from mldanet.sgm import BLOCK_SIZES, NUM_DISPARITIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-path", required=True, help="KITTI raw root (<root>/<date>/<drive>_sync/...)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", help="split name: hints for its train and val lines")
    source.add_argument("--split-file", help="any split file: hints for its lines")
    parser.add_argument("--splits-dir", help="folder of split folders (default: $MLDANET_SPLITS_DIR)")
    parser.add_argument("--out", required=True, help="hints directory (<out>/<date>/<drive>/image_0X/<frame>.npy)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    parser.add_argument("--height", type=int, default=320, help="hint height (default 320)")
    parser.add_argument("--width", type=int, default=1024, help="hint width (default 1024)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="recompute hints that already exist (needed to reuse --out with other settings than its hints_settings.json)",
    )
    parser.add_argument("--img-ext", default=".jpg", choices=typing.get_args(ImageExt), help="image file extension")
    parser.add_argument("--block-sizes", type=int, nargs="+", default=list(BLOCK_SIZES), help="SGBM block sizes")
    parser.add_argument(
        "--num-disparities", type=int, nargs="+", default=list(NUM_DISPARITIES), help="SGBM disparity ranges"
    )
    parser.add_argument(
        "--skip-missing", action="store_true", help="leave out pairs with a missing image instead of failing"
    )


def split_lines_for_hints(split: str, splits_dir: str | None) -> list[str]:
    """The train and val lines of ``split`` (whichever exist; at least one must)."""
    lines: list[str] = []
    for which in ("train", "val"):
        try:
            lines += read_split_lines(split, which, splits_dir)
        except FileNotFoundError as error:
            absent = error
    if not lines:
        raise FileNotFoundError(f"split '{split}' has neither a train nor a val list ({absent})")
    return lines


def run(args: argparse.Namespace) -> int:
    lines = read_split_lines(args.split_file) if args.split_file else split_lines_for_hints(args.split, args.splits_dir)
    summary = compute_hints(
        args.data_path,
        lines,
        args.out,
        height=args.height,
        width=args.width,
        workers=args.workers,
        overwrite=args.overwrite,
        img_ext=args.img_ext,
        block_sizes=tuple(args.block_sizes),
        num_disparities=tuple(args.num_disparities),
        skip_missing=args.skip_missing,
    )
    print(summary)
    return 0
