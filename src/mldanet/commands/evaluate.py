"""``mldanet evaluate``: the 7 depth metrics of a checkpoint, or of precomputed disparities (see :mod:`mldanet.evaluation.evaluate`)."""

from __future__ import annotations

import argparse
import sys
import json
import typing
from pathlib import Path

from mldanet.config import DeviceChoice, ImageExt
from mldanet.evaluation.evaluate import (
    BENCHMARK_SPLIT,
    check_gt_lines,
    check_pred_aspects,
    check_pred_disps_split,
    evaluate_checkpoint,
    load_pred_disps,
)
from mldanet.evaluation.boundaries import format_boundary_row
from mldanet.evaluation.protocol import SCALINGS, evaluate_disparities, format_metrics_row
from mldanet.paths import require_dir, require_writable_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint file (or run folder) to evaluate")
    source.add_argument("--pred-disps", help="N×h×w scaled disparities (.npy) instead of a checkpoint; needs --gt and --scaling")
    parser.add_argument("--data-path", help="the dataset's root (with --checkpoint): KITTI raw, or your folder of sequences")
    parser.add_argument("--dataset",
                        help="layout of --data-path (default: the checkpoint's): kitti or folder (sequences, camera.yaml and depth/ maps: "
                             "the test list, or the frames training held out, scored against the depth maps)")
    parser.add_argument("--intrinsics", help="--dataset folder: the camera file (default: the checkpoint's, else "
                                             "DATA/camera.yaml)")
    parser.add_argument("--split", default="eigen", help="split whose test_files.txt is evaluated (default: eigen)")
    parser.add_argument("--splits-dir", help="folder of split folders (default: $MLDANET_SPLITS_DIR)")
    parser.add_argument("--split-file", help="any split file, instead of --split (with --pred-disps: the frames the "
                        "disparities are of, checked against the lines stored in --gt)")
    parser.add_argument("--gt", help="gt_depths.npz from `mldanet export-gt` (default with --checkpoint: from the Velodyne scans)")
    parser.add_argument("--benchmark-dir", help="KITTI annotated depth maps, for eigen_benchmark without --gt (or the root of "
                        "`mldanet synth` drives: their dense maps, with depth boundary errors)")
    parser.add_argument("--scaling", choices=SCALINGS,
                        help="default: stereo (×baseline/0.1, 5.4 on KITTI) for S/MS checkpoints, median for M")
    parser.add_argument("--no-eigen-crop", action="store_true", help="score the whole ground truth, not the Garg/Eigen crop")
    parser.add_argument("--post-process", action="store_true", help="average with the flipped image's prediction (edge-blended)")
    parser.add_argument("--json", help="also write the result to this JSON file (checked writable before evaluating)")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per network forward pass (default 8)")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="image-loading processes (default: 2, at most the usable cores minus one)")
    parser.add_argument(
        "--device", choices=typing.get_args(DeviceChoice), default="auto", help="where the network runs (auto: cuda when available)"
    )
    parser.add_argument("--img-ext", choices=typing.get_args(ImageExt), help="KITTI image extension (default: the checkpoint's)")


def warn_if_trained_on(checkpoint: str, lines: list[str]) -> None:
    """A warning when the run that wrote ``checkpoint`` trained on frames this evaluation scores."""
    from mldanet.data.splits import read_lines_file, shared_frames
    from mldanet.run_dir import RunDir

    path = RunDir.resolve(checkpoint)
    run = RunDir.of_checkpoint(path)
    trained = run.trained_lines if run is not None else None
    if trained is None or not trained.is_file():
        return
    shared = shared_frames(read_lines_file(trained, check=None), lines)
    if shared:
        print(f"warning: the run of {path} trained on {len(shared)} of the {len(lines)} frames scored here "
              f"(its {trained}; first: '{shared[0]}'): these numbers are not a held-out evaluation", file=sys.stderr)


def workers(args: argparse.Namespace) -> int:
    from mldanet.device import fitted_workers

    return fitted_workers(2) if args.num_workers is None else args.num_workers


def run(args: argparse.Namespace) -> int:
    # every path first: an unwritable --json found after an hour of evaluation loses the result
    if args.json:
        require_writable_file(args.json, "--json file")
    if args.checkpoint:
        if not args.data_path:
            raise ValueError("--checkpoint needs --data-path (the dataset's root: KITTI raw, or your folder)")
        require_dir(args.data_path, "data path")
        from mldanet.data.base import dataset_class
        from mldanet.models.checkpoint import read_checkpoint_config

        if args.dataset is None:  # the layout the checkpoint was trained on
            args.dataset = read_checkpoint_config(args.checkpoint).data.dataset
        dataset_class(args.dataset)
    args.dataset = args.dataset or "kitti"
    if args.benchmark_dir:
        require_dir(args.benchmark_dir, "benchmark directory")
    if args.pred_disps:
        missing = [flag for flag, value in (("--gt", args.gt), ("--scaling", args.scaling)) if not value]
        if missing:
            raise ValueError(f"--pred-disps needs {' and '.join(missing)}")
    gt = None
    if args.gt:
        from mldanet.data.ground_truth import read_gt_depths

        gt = read_gt_depths(args.gt)
    gt_depths = gt.maps if gt is not None else None
    kitti = args.dataset == "kitti"
    eigen_crop = not args.no_eigen_crop and not (kitti and args.split == BENCHMARK_SPLIT and not args.split_file)
    if args.pred_disps:
        pred_disps = load_pred_disps(args.pred_disps)
        if len(pred_disps) != len(gt_depths):
            raise ValueError(
                f"{args.pred_disps} holds {len(pred_disps)} disparities but {args.gt} holds {len(gt_depths)} "
                "ground-truth depth maps: they must be the same frames in the same order"
            )
        if args.split_file:
            check_pred_disps_split(args.split_file, gt, len(pred_disps), args.gt)
        check_pred_aspects(pred_disps, gt_depths, args.pred_disps, args.gt, gt.lines)
        result = evaluate_disparities(pred_disps, gt_depths, scaling=args.scaling, eigen_crop=eigen_crop)
        source = {"pred_disps": str(args.pred_disps)}
    elif not kitti:
        from mldanet.data.base import dataset_class

        lines = dataset_class(args.dataset).read_split_file(args.split_file, None) if args.split_file else None
        if gt_depths is not None and (lines is None or len(gt_depths) != len(lines)):
            raise ValueError(f"--gt with --dataset {args.dataset} needs the --split-file of its frames, in its order")
        if lines is not None:
            warn_if_trained_on(args.checkpoint, lines)
        result = evaluate_checkpoint(
            args.checkpoint, args.data_path, lines, gt_depths, scaling=args.scaling, post_process=args.post_process,
            batch_size=args.batch_size, device=args.device, img_ext=args.img_ext, num_workers=workers(args),
            eigen_crop=False if args.no_eigen_crop else None, source=args.split_file or "<lines>", gt_source=args.gt,
            dataset=args.dataset, intrinsics=args.intrinsics or "",
        )
        eigen_crop = result.eigen_crop
        source = {"checkpoint": str(args.checkpoint), "dataset": args.dataset, "post_process": args.post_process}
    else:
        from mldanet.data.splits import read_lines_file, resolve_split_path

        if args.split == BENCHMARK_SPLIT and not args.split_file and not (args.gt or args.benchmark_dir):
            raise ValueError(f"split {BENCHMARK_SPLIT} is scored on the annotated depth maps: give --gt or --benchmark-dir")
        split_path = resolve_split_path(args.split_file or args.split, "test", args.splits_dir)
        lines = read_lines_file(split_path)
        if gt_depths is not None and len(gt_depths) != len(lines):
            raise ValueError(
                f"{args.gt} holds {len(gt_depths)} ground-truth depth maps but {split_path} lists {len(lines)} "
                "test frames: export the ground truth from the same split (mldanet export-gt)"
            )
        if gt is not None and gt.lines is not None:
            check_gt_lines(gt.lines, lines, args.gt, split_path)
        warn_if_trained_on(args.checkpoint, lines)
        result = evaluate_checkpoint(
            args.checkpoint, args.data_path, lines, gt_depths, scaling=args.scaling, post_process=args.post_process,
            batch_size=args.batch_size, device=args.device, img_ext=args.img_ext, num_workers=workers(args),
            eigen_crop=eigen_crop, benchmark_dir=args.benchmark_dir, source=split_path, gt_source=args.gt,
        )
        source = {"checkpoint": str(args.checkpoint), "split": str(args.split_file or args.split), "post_process": args.post_process}

    what = f"{result.count} frames, {result.scaling} scaling"
    if result.scaling == "stereo":
        what += f" (×{result.stereo_factor:g})"
    else:
        what += f" (ratio median {result.ratio_median:.3f}, std {result.ratio_std:.3f})"
    if result.skipped:
        what += f"; {len(result.skipped)} frames skipped without valid ground truth"
    print(f"{next(iter(source.values()))}: {what}")
    print(format_metrics_row(result.metrics))
    if result.boundary is not None:
        print(format_boundary_row(result.boundary))
    if args.json:
        payload = {**result.to_dict(), **source, "gt": str(args.gt) if args.gt else ("velodyne" if kitti else "depth maps"), "eigen_crop": eigen_crop}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
