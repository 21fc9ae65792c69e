"""``mldanet hints``: fused-SGM depth hints of a split's images (see :mod:`mldanet.data.depth_hints`)."""

from __future__ import annotations

import argparse
import os
import re
import typing

from mldanet.config import ImageExt
from mldanet.data.depth_hints import HintSettings, HintsSummary, Shard, compute_hints, parse_shard, run_hint_jobs
from mldanet.data.splits import read_split_lines
from mldanet.folder_lock import LOCK_NAME, FolderLock
from mldanet.paths import require_writable_dir
from mldanet.sgm import BLOCK_SIZES, NUM_DISPARITIES
from mldanet.types import STEREO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-path", required=True,
                        help="KITTI raw root (<root>/<date>/<drive>_sync/...), or your folder of sequences")
    parser.add_argument("--dataset", choices=("kitti", "folder"), default="kitti",
                        help="layout of --data-path (default kitti); folder: hints of the left frames that have a "
                             "right/ image, saved as OUT/<sequence>/<frame>.npy")
    parser.add_argument("--intrinsics", default="", help="--dataset folder: the camera file (default DATA/camera.yaml)")
    parser.add_argument("--mode", choices=("S", "MS"), default="MS",
                        help="--dataset folder without split files: the frames the training of this mode uses")
    parser.add_argument("--frame-step", type=int, default=1, help="--dataset folder: as train's --frame-step")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--split", help="KITTI split name: hints for its train and val lines")
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
    parser.add_argument(
        "--shard", metavar="K/N",
        help="compute only the K-th of N disjoint shares of the hints (K counts from 1: 1/4 ... 4/4), so that N "
             "processes on N machines fill one shared --out (a SLURM array: --array=1-N and "
             "--shard $SLURM_ARRAY_TASK_ID/N); shares are fixed by the hint paths, the same on every machine",
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


SHARD_LOCK = re.compile(r"\.mldanet-shard-(\d+)-of-(\d+)\.lock")


def shard_lock_name(shard: Shard) -> str:
    """The lock file of one shard in the hints folder: shards share the folder, one process per shard."""
    return f".mldanet-shard-{shard.index}-of-{shard.count}.lock"


def hints_folder_lock(out: str, shard: Shard | None) -> FolderLock:
    """The lock a ``hints`` run holds on ``out``. A run without ``--shard`` excludes every other
    writer (shards included); a shard excludes the same shard, an unsharded run, and the shards
    of another N (whose shares would overlap with its own)."""
    if shard is None:
        return FolderLock(
            out, "mldanet hints", "hints folder --out", conflicts=lambda name: SHARD_LOCK.fullmatch(name) is not None
        )

    def conflicts(name: str) -> bool:
        match = SHARD_LOCK.fullmatch(name)
        return name == LOCK_NAME or (match is not None and int(match[2]) != shard.count)

    return FolderLock(
        out, f"mldanet hints --shard {shard}", "hints folder --out", name=shard_lock_name(shard), conflicts=conflicts
    )


def folder_hints(args: argparse.Namespace, shard: Shard | None = None) -> HintsSummary:
    """Hints of a folder dataset's targets (its split files, or the ones training would generate)."""
    from mldanet.config import DataConfig, TrainConfig
    from mldanet.data.folder import FolderDataset

    if args.split:
        raise ValueError("--split names a KITTI split; a folder's lines come from DATA/splits or --split-file")
    data = DataConfig(dataset="folder", data_path=args.data_path, intrinsics=args.intrinsics, frame_step=args.frame_step)
    if args.split_file:
        lines, source = FolderDataset.read_split_file(args.split_file, data), args.split_file
    else:
        frame_ids = TrainConfig(mode=args.mode).frame_ids
        lines, source = FolderDataset.split_lines(data, "train", frame_ids)
        lines += FolderDataset.split_lines(data, "val", frame_ids)[0]
    if args.height <= 0 or args.width <= 0:
        raise ValueError(f"hint size {args.height}×{args.width} must be positive")
    dataset = FolderDataset(
        args.data_path, lines, args.height, args.width, (0, STEREO), train=False, skip_missing=args.skip_missing,
        source=source, intrinsics=args.intrinsics,
    )
    jobs = dataset.hint_jobs(args.out)
    # over all jobs, not the shard's: every shard must record the same settings
    layout = {"layout": "folder", "normalised_fx": sorted({job.normalised_fx for job in jobs})}
    settings = HintSettings(args.height, args.width, tuple(args.block_sizes), tuple(args.num_disparities))
    return run_hint_jobs(
        jobs, args.out, settings, layout, workers=args.workers, overwrite=args.overwrite, skip_missing=args.skip_missing,
        shard=shard,
    )


def run(args: argparse.Namespace) -> int:
    # One writer per hints folder, or one per shard: two writing the same files would mix two sets
    # of settings in one folder (shards agree on the settings file and write disjoint files).
    shard = parse_shard(args.shard) if args.shard is not None else None
    with hints_folder_lock(require_writable_dir(args.out, "hints folder"), shard):
        return compute(args, shard)


def compute(args: argparse.Namespace, shard: Shard | None = None) -> int:
    if args.dataset == "folder":
        print(folder_hints(args, shard))
        return 0
    if not (args.split or args.split_file):
        raise ValueError("give --split NAME or --split-file FILE: the KITTI lines to compute hints for")
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
        shard=shard,
    )
    print(summary)
    return 0
