"""``mldanet export-gt``: Velodyne ground truth of a split into ``gt_depths.npz`` (see :mod:`mldanet.data.ground_truth`)."""

from __future__ import annotations

import argparse

from mldanet.data.ground_truth import BENCHMARK_SPLIT, export_gt_depths
from mldanet.data.splits import read_split_lines
from mldanet.paths import require_dir, require_writable_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-path", required=True, help="KITTI raw root (<root>/<date>/<drive>_sync/...)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", help="split name: its test_files.txt is exported (eigen, eigen_benchmark, ...)")
    source.add_argument("--split-file", help="any split file")
    parser.add_argument("--splits-dir", help="folder of split folders (default: $MLDANET_SPLITS_DIR)")
    parser.add_argument("--out", required=True, help="output .npz (key 'data'; the split lines under 'lines')")
    parser.add_argument("--benchmark-dir", help="KITTI depth-completion annotations (needed for eigen_benchmark)")
    parser.add_argument(
        "--exact-min",
        action="store_true",
        help="keep the nearest point of every pixel; default: monodepth2's maps bit for bit, whose duplicate rule "
        "gives a few pixels of column 0 the depth of the row above's last pixel",
    )


def run(args: argparse.Namespace) -> int:
    require_dir(args.data_path, "data path")
    if args.split == BENCHMARK_SPLIT and not args.benchmark_dir:
        raise ValueError(f"split {BENCHMARK_SPLIT} uses the annotated depth maps: give --benchmark-dir")
    if args.benchmark_dir:
        require_dir(args.benchmark_dir, "benchmark directory")
    require_writable_file(args.out, "--out file")
    lines = read_split_lines(args.split_file or args.split, "test", args.splits_dir)
    out = export_gt_depths(args.data_path, lines, args.out, args.benchmark_dir, exact_min=args.exact_min)
    print(f"wrote {len(lines)} ground-truth maps to {out}")
    return 0
