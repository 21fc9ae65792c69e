"""``mldanet evaluate``: the 7 depth metrics of a checkpoint, or of precomputed disparities (see :mod:`mldanet.evaluation.evaluate`)."""

from __future__ import annotations

import argparse
import sys
import json
import typing
from dataclasses import replace
from pathlib import Path

from mldanet.config import DataConfig, DeviceChoice, ImageExt
from mldanet.data.base import FrameDataset, dataset_class, dataset_help, is_module_spec
from mldanet.data.ground_truth import GroundTruth
from mldanet.evaluation.evaluate import (
    EvalResult,
    check_gt_lines,
    check_pred_aspects,
    check_pred_disps_split,
    evaluate_checkpoint,
    load_pred_disps,
)
from mldanet.evaluation.boundaries import format_boundary_row
from mldanet.evaluation.protocol import SCALINGS, evaluate_disparities, format_metrics_row
from mldanet.paths import require_dir, require_writable_file
from mldanet.types import FrameId


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint file (or run folder) to evaluate")
    source.add_argument("--pred-disps", help="N×h×w scaled disparities (.npy) instead of a checkpoint; needs --gt and --scaling")
    parser.add_argument("--data-path", help="the dataset's root (with --checkpoint): KITTI raw, or your folder of sequences")
    parser.add_argument("--dataset",
                        help=f"layout of --data-path (default: the checkpoint's): {dataset_help()}; folder: sequences, "
                             "camera.yaml and depth/ maps (the test list, or the frames training held out, scored "
                             "against the depth maps)")
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


def evaluation_data(args: argparse.Namespace, trained: DataConfig | None) -> DataConfig:
    """The dataset whose test lines ``evaluate`` scores: ``--dataset`` (default: the checkpoint's, else
    kitti) at ``--data-path``, with ``--split``/``--splits-dir`` and the ``trained`` checkpoint's
    other data settings (a folder's frame step and val_every make its generated test list)."""
    if not args.dataset and trained is not None and is_module_spec(trained.dataset):
        # a checkpoint's config must not make evaluate import a module: the user names it
        raise ValueError(
            f"the checkpoint was trained on data.dataset={trained.dataset}, a user's module: pass --dataset "
            f"{trained.dataset} to import it and score its test lines"
        )
    args.dataset = args.dataset or (trained.dataset if trained is not None else "kitti")
    return replace(
        trained or DataConfig(), dataset=args.dataset, data_path=args.data_path or "", split=args.split,
        splits_dir=args.splits_dir or "",
    )


def evaluate_pred_disps(args: argparse.Namespace, gt: GroundTruth, eigen_crop: bool) -> EvalResult:
    """The metrics of ``--pred-disps`` against ``--gt``, frame by frame."""
    pred_disps = load_pred_disps(args.pred_disps)
    if len(pred_disps) != len(gt.maps):
        raise ValueError(
            f"{args.pred_disps} holds {len(pred_disps)} disparities but {args.gt} holds {len(gt.maps)} "
            "ground-truth depth maps: they must be the same frames in the same order"
        )
    if args.split_file:
        check_pred_disps_split(args.split_file, gt, len(pred_disps), args.gt)
    check_pred_aspects(pred_disps, gt.maps, args.pred_disps, args.gt, gt.lines)
    return evaluate_disparities(pred_disps, gt.maps, scaling=args.scaling, eigen_crop=eigen_crop)


def evaluate_on_test_lines(
    args: argparse.Namespace, cls: type[FrameDataset], data: DataConfig, frame_ids: tuple[FrameId, ...],
    gt: GroundTruth | None, eigen_crop: bool,
) -> EvalResult:
    """The metrics of ``--checkpoint`` (trained with ``frame_ids``) on the dataset's test lines
    (:meth:`FrameDataset.test_lines`), against ``--gt``, ``--benchmark-dir`` or the dataset's own ground truth."""
    lines, split_path = cls.test_lines(data, args.split_file, frame_ids)
    if gt is not None and len(gt.maps) != len(lines):
        raise ValueError(
            f"{args.gt} holds {len(gt.maps)} ground-truth depth maps but {split_path} lists {len(lines)} "
            "test frames: export the ground truth from the same split (mldanet export-gt)"
        )
    if gt is not None and gt.lines is not None:
        check_gt_lines(gt.lines, lines, args.gt, split_path)
    warn_if_trained_on(args.checkpoint, lines)
    return evaluate_checkpoint(
        args.checkpoint, args.data_path, lines, gt.maps if gt is not None else None, scaling=args.scaling,
        post_process=args.post_process, batch_size=args.batch_size, device=args.device, img_ext=args.img_ext,
        num_workers=workers(args), eigen_crop=eigen_crop, benchmark_dir=args.benchmark_dir, source=split_path,
        gt_source=args.gt, dataset=args.dataset, intrinsics=args.intrinsics or "",
    )


def workers(args: argparse.Namespace) -> int:
    from mldanet.device import fitted_workers

    return fitted_workers(2) if args.num_workers is None else args.num_workers


def run(args: argparse.Namespace) -> int:
    # every path first: an unwritable --json found after an hour of evaluation loses the result
    if args.json:
        require_writable_file(args.json, "--json file")
    if args.checkpoint and not args.data_path:
        raise ValueError("--checkpoint needs --data-path (the dataset's root: KITTI raw, or your folder)")
    trained = None
    if args.checkpoint:
        from mldanet.models.checkpoint import read_checkpoint_config

        require_dir(args.data_path, "data path")
        trained = read_checkpoint_config(args.checkpoint)
    data = evaluation_data(args, trained.data if trained is not None else None)
    cls = dataset_class(data.dataset)
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
    external_gt = bool(args.gt or args.benchmark_dir)
    eigen_crop = cls.test_eigen_crop(data, args.split_file, external_gt) and not args.no_eigen_crop
    if trained is None:
        result = evaluate_pred_disps(args, gt, eigen_crop)
        source = {"pred_disps": str(args.pred_disps)}
    else:
        result = evaluate_on_test_lines(args, cls, data, trained.train.frame_ids, gt, eigen_crop)
        source = {"checkpoint": str(args.checkpoint), "split": str(args.split_file or args.split),
                  "dataset": args.dataset, "post_process": args.post_process}

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
        gt_name = str(args.gt) if args.gt else "benchmark depth maps" if args.benchmark_dir else cls.ground_truth_kind
        payload = {**result.to_dict(), **source, "gt": gt_name, "eigen_crop": eigen_crop}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
