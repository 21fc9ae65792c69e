"""``mldanet evaluate``: the 7 Eigen metrics of a checkpoint, or of precomputed disparities.

Two sources of predictions:

* ``--checkpoint CKPT --data-path ROOT --split eigen``: the network runs on the split's test
  frames at the resolution it was trained at; ground truth comes from ``--gt gt_depths.npz``
  (``mldanet export-gt``) or, without it, from the Velodyne scans on the fly. The checkpoint's
  training mode picks the scaling (S/MS: stereo ×5.4, M: median) unless ``--scaling`` says.
* ``--pred-disps FILE.npy --gt gt_depths.npz --scaling {median,stereo}``: N×h×w scaled
  disparities (monodepth2's ``--ext_disp_to_eval``), in the ground truth's order.

The Garg/Eigen crop is applied except for ``eigen_benchmark`` (whose annotated maps monodepth2
scores uncropped) or with ``--no-eigen-crop``.

Ground truth given with ``--gt`` must be of the split's frames: a file from ``mldanet export-gt``
stores the split lines and is refused when they differ; every map must have its image's size.
Paths are checked (``--json`` writable included) before anything is loaded.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from mldanet.data.npy import load_npy
from mldanet.data.units import metric_scale
from mldanet.evaluation.protocol import SCALINGS, EvalResult, evaluate_disparities, format_metrics_row
from mldanet.paths import require_dir, require_writable_file

BENCHMARK_SPLIT = "eigen_benchmark"


def velodyne_ground_truth(
    data_path: str | Path, lines: Sequence[str], benchmark_dir: str | Path | None = None, progress: bool = True
) -> list[np.ndarray]:
    """Native-size ground truth of every line, computed now (what ``mldanet export-gt`` would save)."""
    from mldanet.data.ground_truth import ground_truth_for_line

    return [
        ground_truth_for_line(data_path, line, benchmark_dir)
        for line in tqdm(lines, desc="ground truth", unit="frame", disable=not progress)
    ]


def check_gt_lines(gt_lines: Sequence[str], lines: Sequence[str], gt_path: str | Path, split_path: str | Path) -> None:
    """Refuse ground truth exported for other split lines than ``lines`` (same frames, same order)."""
    from mldanet.data.splits import parse_split_line

    for i, (stored, line) in enumerate(zip(gt_lines, lines, strict=True), start=1):
        if parse_split_line(stored, f"{gt_path} (its 'lines')", i) != parse_split_line(line, split_path, i):
            raise ValueError(
                f"{gt_path} holds the ground truth of other frames than {split_path}: its line {i} is '{stored.strip()}' "
                f"but the split's is '{line.strip()}'; export the ground truth from this split (mldanet export-gt)"
            )


def check_pred_disps_split(split_file: str | Path, gt, count: int, gt_path: str | Path) -> None:
    """With ``--pred-disps``, a ``--split-file`` names the frames the disparities are of: it must list
    ``count`` lines and, where the ground-truth file stores its lines, the same ones."""
    from mldanet.data.splits import read_lines_file

    lines = read_lines_file(split_file)
    if len(lines) != count:
        raise ValueError(
            f"--split-file {split_file} lists {len(lines)} frames but the disparities and {gt_path} hold {count}"
        )
    if gt.lines is not None:
        check_gt_lines(gt.lines, lines, gt_path, split_file)


def check_gt_sizes(
    gt_depths: Sequence[np.ndarray], images: Sequence[Path], lines: Sequence[str], gt_path: str | Path, split_path: str | Path
) -> None:
    """Refuse ground truth whose map ``i`` is not the size of image ``i`` (the frame of split line ``i``).

    This catches the ground truth of another split of the same length when the file does not say
    which split it is of (monodepth2's). Only image headers are read.
    """
    from mldanet.data.images import read_image_size

    for i, (depth, image, line) in enumerate(zip(gt_depths, images, lines, strict=True), start=1):
        size = read_image_size(image)
        if depth.shape != size:
            raise ValueError(
                f"{gt_path}: ground-truth map {i} is {depth.shape[1]}×{depth.shape[0]} but its image {image} (line {i} of "
                f"{split_path}: '{line.strip()}') is {size[1]}×{size[0]}: the ground truth is of other frames; "
                "export it from this split (mldanet export-gt)"
            )


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_path: str | Path,
    lines: Sequence[str] | None,
    gt_depths: Sequence[np.ndarray] | None = None,
    *,
    scaling: str | None = None,
    post_process: bool = False,
    batch_size: int = 8,
    device: str = "auto",
    img_ext: str | None = None,
    num_workers: int = 0,
    eigen_crop: bool | None = None,
    benchmark_dir: str | Path | None = None,
    progress: bool = True,
    source: str | Path = "<lines>",
    gt_source: str | Path | None = None,
    dataset: str = "kitti",
    intrinsics: str = "",
) -> EvalResult:
    """Run a checkpoint on the frames of ``lines`` and score it against ``gt_depths`` (one per line).

    ``dataset`` names the layout of ``data_path`` (``kitti``, ``folder``, …); ``lines=None`` takes
    the dataset's test list (a folder without split files: the frames its training held out).
    Without ``gt_depths`` the ground truth is the dataset's own: KITTI's Velodyne scans (or
    ``benchmark_dir``), a folder's depth maps (frames without one are left out, and said so).
    ``scaling`` defaults to the checkpoint's training mode, ``eigen_crop`` to the dataset's protocol
    (KITTI's crop; none for a folder), ``img_ext`` to the checkpoint's config; the metric scale of
    stereo scaling is the checkpoint's rig (``data.baseline``). The images are resized to the
    checkpoint's training resolution. ``source`` (the split file) is named by errors about a line.
    With ``gt_source`` (the file ``gt_depths`` came from), every map must be its image's size
    (:func:`check_gt_sizes`), before the network runs.
    """
    from mldanet.data.base import build_dataset, dataset_class
    from mldanet.device import resolve_device
    from mldanet.evaluation.inference import predict_disparities
    from mldanet.training.checkpoint import load_depth_net
    from mldanet.types import collate_samples

    if gt_depths is not None and lines is not None and len(gt_depths) != len(lines):
        raise ValueError(
            f"{len(lines)} test frames but {len(gt_depths)} ground-truth depth maps: "
            "the ground truth must be exported from the same split"
        )
    torch_device = resolve_device(device)
    net, config = load_depth_net(checkpoint, torch_device)
    scaling = scaling or ("stereo" if config.train.metric else "median")
    cls = dataset_class(dataset)
    data = replace(
        config.data, dataset=dataset, data_path=str(data_path), img_ext=img_ext or config.data.img_ext,
        intrinsics=intrinsics or (config.data.intrinsics if config.data.dataset == dataset else ""),
    )
    if lines is None:
        lines, source = cls.split_lines(data, "test", config.train.frame_ids)
    own_gt = gt_depths is None and not cls.eigen_crop  # a folder's depth maps: frames without one are left out
    data.skip_missing = own_gt
    test_set = build_dataset(data, lines, (0,), train=False, source=source, load_gt=own_gt)
    if own_gt and test_set.skipped:
        print(f"{len(test_set.skipped)} of {len(lines)} test frames have no depth map and are left out "
              f"(first: {test_set.skipped[0]})")
    if gt_depths is not None and gt_source is not None:
        images = [test_set.frame_path(item, 0) for item in test_set.items]
        check_gt_sizes(gt_depths, images, test_set.lines, gt_source, source)
    if gt_depths is None:
        if own_gt:
            gt_depths = [
                test_set.ground_truth(item)
                for item in tqdm(test_set.items, desc="ground truth", unit="frame", disable=not progress)
            ]
        else:
            gt_depths = velodyne_ground_truth(data_path, test_set.lines, benchmark_dir, progress)
    loader = DataLoader(
        test_set, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_samples,
        pin_memory=torch_device.type == "cuda",
    )
    pred_disps = predict_disparities(
        net, loader, batch_size=batch_size, device=str(torch_device), post_process=post_process, progress=progress,
        min_depth=config.model.min_depth, max_depth=config.model.max_depth,
    )
    return evaluate_disparities(
        pred_disps, gt_depths, scaling=scaling, eigen_crop=cls.eigen_crop if eigen_crop is None else eigen_crop,
        stereo_factor=metric_scale(config.data.baseline),  # also when M is scored with --scaling stereo
    )


def load_pred_disps(path: str | Path) -> np.ndarray:
    """N×h×w disparities from a ``.npy`` (N×1×h×w is accepted too)."""
    disps = load_npy(path, "disparity file")  # numbers only: an object array is refused unread
    if disps.ndim == 4 and disps.shape[1] == 1:
        disps = disps[:, 0]
    if disps.ndim != 3:
        raise ValueError(f"{path}: expected N×h×w disparities, got an array of shape {disps.shape}")
    return disps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="checkpoint file (or run folder) to evaluate")
    source.add_argument("--pred-disps", help="N×h×w scaled disparities (.npy) instead of a checkpoint; needs --gt and --scaling")
    parser.add_argument("--data-path", help="the dataset's root (with --checkpoint): KITTI raw, or your folder of sequences")
    parser.add_argument("--dataset", default="kitti",
                        help="layout of --data-path: kitti (default) or folder (sequences, camera.yaml and depth/ maps: "
                             "the test list, or the frames training held out, scored against the depth maps)")
    parser.add_argument("--intrinsics", help="--dataset folder: the camera file (default: the checkpoint's, else "
                                             "DATA/camera.yaml)")
    parser.add_argument("--split", default="eigen", help="split whose test_files.txt is evaluated (default: eigen)")
    parser.add_argument("--splits-dir", help="folder of split folders (default: $MLDANET_SPLITS_DIR)")
    parser.add_argument("--split-file", help="any split file, instead of --split (with --pred-disps: the frames the "
                        "disparities are of, checked against the lines stored in --gt)")
    parser.add_argument("--gt", help="gt_depths.npz from `mldanet export-gt` (default with --checkpoint: from the Velodyne scans)")
    parser.add_argument("--benchmark-dir", help="KITTI annotated depth maps, for eigen_benchmark without --gt")
    parser.add_argument("--scaling", choices=SCALINGS, help="default: stereo (×5.4) for S/MS checkpoints, median for M")
    parser.add_argument("--no-eigen-crop", action="store_true", help="score the whole ground truth, not the Garg/Eigen crop")
    parser.add_argument("--post-process", action="store_true", help="average with the flipped image's prediction (edge-blended)")
    parser.add_argument("--json", help="also write the result to this JSON file (checked writable before evaluating)")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per network forward pass (default 8)")
    parser.add_argument("--num-workers", type=int, default=2, help="image-loading processes")
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the network runs (auto: cuda when available)"
    )
    parser.add_argument("--img-ext", choices=(".jpg", ".png"), help="KITTI image extension (default: the checkpoint's)")


def run(args: argparse.Namespace) -> int:
    # every path first: an unwritable --json found after an hour of evaluation loses the result
    if args.json:
        require_writable_file(args.json, "--json file")
    if args.checkpoint:
        if not args.data_path:
            raise ValueError("--checkpoint needs --data-path (the dataset's root: KITTI raw, or your folder)")
        require_dir(args.data_path, "data path")
        from mldanet.data.base import dataset_class

        dataset_class(args.dataset)
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
        result = evaluate_disparities(pred_disps, gt_depths, scaling=args.scaling, eigen_crop=eigen_crop)
        source = {"pred_disps": str(args.pred_disps)}
    elif not kitti:
        from mldanet.data.base import dataset_class

        lines = dataset_class(args.dataset).read_split_file(args.split_file) if args.split_file else None
        if gt_depths is not None and (lines is None or len(gt_depths) != len(lines)):
            raise ValueError(f"--gt with --dataset {args.dataset} needs the --split-file of its frames, in its order")
        result = evaluate_checkpoint(
            args.checkpoint, args.data_path, lines, gt_depths, scaling=args.scaling, post_process=args.post_process,
            batch_size=args.batch_size, device=args.device, img_ext=args.img_ext, num_workers=args.num_workers,
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
        result = evaluate_checkpoint(
            args.checkpoint, args.data_path, lines, gt_depths, scaling=args.scaling, post_process=args.post_process,
            batch_size=args.batch_size, device=args.device, img_ext=args.img_ext, num_workers=args.num_workers,
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
    if args.json:
        payload = {**result.to_dict(), **source, "gt": str(args.gt) if args.gt else ("velodyne" if kitti else "depth maps"), "eigen_crop": eigen_crop}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
