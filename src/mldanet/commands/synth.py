"""``mldanet synth``: render synthetic drives in a dataset's layout (see :mod:`mldanet.synth.writer`).

``--layout`` names a dataset (as ``--dataset`` does); its class names the synthetic layout it
reads (``FrameDataset.synth_layout``, one of :data:`mldanet.synth.layouts.SYNTH_LAYOUTS`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mldanet.data.base import dataset_class, dataset_help
from mldanet.synth.layouts import SYNTH_LAYOUTS, SynthLayout
from mldanet.synth.writer import IMAGE_EXTENSIONS, default_workers, write_synthetic_drives


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
    parser.add_argument("--layout", default="kitti",
                        help=f"the dataset whose layout to write: {dataset_help()}, of those with a synthetic layout; "
                             "kitti: KITTI raw with calibration, Velodyne scans and splits (default); folder: the "
                             "layout of --dataset folder (frames, right/, dense depth/ maps, camera.yaml)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def layout_of(dataset: str) -> SynthLayout:
    """The synthetic layout the dataset ``dataset`` reads; one that names none is an error naming it."""
    cls = dataset_class(dataset)
    if cls.synth_layout not in SYNTH_LAYOUTS:
        raise ValueError(
            f"--layout {dataset}: the {cls.name} dataset has no synthetic layout (its synth_layout is "
            f"{cls.synth_layout!r}, not one of {', '.join(SYNTH_LAYOUTS)})"
        )
    return SYNTH_LAYOUTS[cls.synth_layout]


def run(args: argparse.Namespace) -> int:
    layout = layout_of(args.layout)
    summary = write_synthetic_drives(
        args.out, drives=args.drives, frames=args.frames, seed=args.seed, width=args.width, height=args.height,
        workers=args.workers, progress=not args.no_progress, img_ext=args.img_ext, layout=layout,
    )
    total = len(summary.drives) * summary.frames
    print(f"wrote {len(summary.drives)} drives × {summary.frames} stereo frames ({summary.width}×{summary.height}, "
          f"{summary.img_ext}) under {summary.root / summary.date} in {summary.seconds:.1f} s "
          f"({summary.seconds / total:.3f} s/frame)")
    for line in layout.next_steps(summary.root, summary.test_drive, summary.split_files):
        print(line)
    return 0
