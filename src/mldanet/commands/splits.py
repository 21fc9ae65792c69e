"""``mldanet splits``: list the split files, or download monodepth2's (see :mod:`mldanet.data.splits`)."""

from __future__ import annotations

import argparse

from mldanet.data.splits import (
    MONODEPTH2_COMMIT, SPLITS_ENV, download_splits, list_splits, overlap_error, read_lines_file, resolve_splits_dir,
    shared_frames,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--splits-dir", help=f"folder of split folders (default: ${SPLITS_ENV})")
    parser.add_argument("--download", action="store_true", help="fetch monodepth2's split files (checksummed)")
    parser.add_argument("--dest", help="where --download writes the split folders")
    parser.add_argument("--check", nargs=2, metavar=("TRAIN", "TEST"),
                        help="report the frames two split files share (exit 1 when they share any)")


def check(train_file: str, test_file: str) -> int:
    train, test = (read_lines_file(path, check=None) for path in (train_file, test_file))
    shared = shared_frames(train, test)
    if not shared:
        print(f"{train_file} ({len(train)} lines) and {test_file} ({len(test)} lines) share no frame")
        return 0
    print(overlap_error(train_file, test, test_file, shared))
    for line in shared[:10]:
        print(f"  {line}")
    if len(shared) > 10:
        print(f"  … and {len(shared) - 10} more")
    return 1


def run(args: argparse.Namespace) -> int:
    if args.check:
        return check(*args.check)
    if args.download:
        if not args.dest:
            raise ValueError("--download needs --dest DIR")
        for path in download_splits(args.dest):
            print(f"{path}  ok")
        print(f"monodepth2 splits at {MONODEPTH2_COMMIT[:12]} verified; use --splits-dir {args.dest}")
        return 0
    if args.dest:
        raise ValueError("--dest is only used with --download")
    splits = list_splits(args.splits_dir)
    if not splits:
        raise FileNotFoundError(f"no split folders (with *_files.txt) in {resolve_splits_dir(args.splits_dir)}")
    width = max(len(name) for name in splits)
    for name, counts in splits.items():
        parts = "  ".join(f"{which} {count}" for which, count in counts.items())
        print(f"{name:<{width}}  {parts}")
    return 0
