"""``mldanet hints``: fused-SGM depth hints of a split's images (see :mod:`mldanet.data.depth_hints`)."""

from __future__ import annotations

import argparse
import os
import re
import typing
from pathlib import Path

from mldanet.config import DataConfig, ImageExt, TrainConfig
from mldanet.data.base import FrameDataset, compute_hints, dataset_class, dataset_help
from mldanet.data.depth_hints import HintSettings, Shard, parse_shard
from mldanet.folder_lock import LOCK_NAME, FolderLock
from mldanet.paths import require_writable_dir
from mldanet.sgm import BLOCK_SIZES, NUM_DISPARITIES
from mldanet.types import FrameId


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-path", required=True,
                        help="KITTI raw root (<root>/<date>/<drive>_sync/...), or your folder of sequences")
    parser.add_argument("--dataset", default="kitti",
                        help=f"layout of --data-path: {dataset_help()} (default kitti); folder: hints of the left "
                             "frames that have a right/ image, saved as OUT/<sequence>/<frame>.npy")
    parser.add_argument("--intrinsics", default="", help="--dataset folder: the camera file (default DATA/camera.yaml)")
    parser.add_argument("--mode", choices=("S", "MS"), default="MS",
                        help="--dataset folder without split files: the frames the training of this mode uses")
    parser.add_argument("--frame-step", type=int, default=1, help="--dataset folder: as train's --frame-step")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--split", help="split name (KITTI's split folders): hints for its train and val lines")
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


def hint_lines(
    cls: type[FrameDataset], data: DataConfig, frame_ids: tuple[FrameId, ...]
) -> tuple[list[str], str | Path]:
    """The train and val lines of the dataset's split (whichever exist; at least one must), and the
    first one's file."""
    lines: list[str] = []
    sources: list[str | Path] = []
    for which in ("train", "val"):
        try:
            part, source = cls.split_lines(data, which, frame_ids)
        except FileNotFoundError as error:
            absent = error
            continue
        lines += part
        sources.append(source)
    if not lines:
        raise FileNotFoundError(f"split '{data.split}' has neither a train nor a val list ({absent})")
    return lines, sources[0]


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


def run(args: argparse.Namespace) -> int:
    # One writer per hints folder, or one per shard: two writing the same files would mix two sets
    # of settings in one folder (shards agree on the settings file and write disjoint files).
    shard = parse_shard(args.shard) if args.shard is not None else None
    with hints_folder_lock(require_writable_dir(args.out, "hints folder"), shard):
        return compute(args, shard)


def check_dataset_flags(cls: type[FrameDataset], args: argparse.Namespace) -> None:
    """Refuse, by name, a dataset without hints and a --split that its layout does not have or needs."""
    if not cls.has_hints():
        raise ValueError(f"--dataset {args.dataset}: the {cls.name} dataset has no depth hints (its class defines no hint_name)")
    if cls.uses_split_folders() and not (args.split or args.split_file):
        raise ValueError(f"give --split NAME or --split-file FILE: the {args.dataset} lines to compute hints for")
    if args.split and not cls.uses_split_folders():
        raise ValueError(f"--split names a split folder; the {args.dataset} dataset's lines come from its own split "
                         "files or --split-file")


def compute(args: argparse.Namespace, shard: Shard | None = None) -> int:
    cls = dataset_class(args.dataset)
    check_dataset_flags(cls, args)
    data = DataConfig(
        dataset=args.dataset, data_path=args.data_path, split=args.split or "", splits_dir=args.splits_dir or "",
        img_ext=args.img_ext, skip_missing=args.skip_missing, intrinsics=args.intrinsics, frame_step=args.frame_step,
    )
    frame_ids = TrainConfig(mode=args.mode).frame_ids
    if args.split_file:
        lines, source = cls.read_split_file(args.split_file, data), args.split_file
    else:
        lines, source = hint_lines(cls, data, frame_ids)
    settings = HintSettings(args.height, args.width, tuple(args.block_sizes), tuple(args.num_disparities))
    print(compute_hints(
        data, lines, args.out, settings, source=source, workers=args.workers, overwrite=args.overwrite, shard=shard,
    ))
    return 0
