"""``mldanet check-data``: what training will find in a folder of your own sequences, before it starts.

Exit code 0 when the folder can be trained on and its depth maps scored (warnings included), 2 when
something would stop training or make ``evaluate`` fail or score wrongly (each problem is one line
naming its file and the fix).
"""

from __future__ import annotations

import argparse

from mldanet.config import MODES, DataConfig, TrainConfig
from mldanet.data.check import STATIC_THRESHOLD, check_folder, write_splits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-path", required=True,
                        help="folder of sequences: DATA/<sequence>/*.jpg|png, optional <sequence>/right/ and "
                             "<sequence>/depth/, a camera file (DATA/camera.yaml or --intrinsics)")
    parser.add_argument("--intrinsics", default="",
                        help="camera file (YAML or JSON): K: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels, "
                             "image_size: [width, height], and for S/MS baseline: metres")
    parser.add_argument("--mode", choices=MODES, default="M",
                        help="what you will train: M needs neighbours, S right images, MS both (default M)")
    defaults = DataConfig()
    parser.add_argument("--frame-step", type=int, default=defaults.frame_step,
                        help=f"neighbours this many frames away (default {defaults.frame_step})")
    parser.add_argument("--val-every", type=int, default=defaults.val_every,
                        help=f"generated splits: every N-th usable frame goes to val and test (default {defaults.val_every})")
    parser.add_argument("--write-splits", action="store_true",
                        help=f"write DATA/splits/{{train,val,test}}_files.txt without the static frames (the picture "
                             f"changes by less than {STATIC_THRESHOLD:g} grey levels to the next neighbour)")
    parser.add_argument("--overwrite", action="store_true", help="with --write-splits: replace existing split files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.val_every < 0:
        raise ValueError(f"--val-every {args.val_every} must be 0 (no validation) or positive")
    frame_ids = TrainConfig(mode=args.mode).frame_ids
    report = check_folder(
        args.data_path, frame_ids, args.frame_step, args.intrinsics, args.val_every, progress=not args.no_progress
    )
    for line in report.lines():
        print(line)
    problems = report.problems
    if problems:
        print(f"{len(problems)} problem(s) would stop training with --mode {args.mode}; the first: {problems[0]}")
        return 2
    if args.write_splits:
        for path in write_splits(report, frame_ids, args.frame_step, args.val_every, args.overwrite):
            print(f"wrote {path} ({sum(1 for _ in path.open())} lines)")
    print(f"ready: mldanet train --dataset folder --data-path {args.data_path}"
          + (f" --intrinsics {args.intrinsics}" if args.intrinsics else "") + f" --mode {args.mode}"
          + (f" --frame-step {args.frame_step}" if args.frame_step != 1 else ""))
    return 0
