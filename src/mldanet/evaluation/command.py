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
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from mldanet.data.npy import load_npy
from mldanet.evaluation.protocol import SCALINGS, EvalResult, evaluate_disparities, format_metrics_row
from mldanet.paths import require_dir, require_writable_file

BENCHMARK_SPLIT = "eigen_benchmark"


def scaling_for_mode(mode: str) -> str:
    """Stereo-trained models (S, MS) know the metric scale (×5.4); monocular ones (M) do not."""
    return "median" if mode == "M" else "stereo"


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
    lines: Sequence[str],
    gt_depths: Sequence[np.ndarray] | None = None,
    *,
    scaling: str | None = None,
    post_process: bool = False,
    batch_size: int = 8,
    device: str = "auto",
    img_ext: str | None = None,
    num_workers: int = 0,
    eigen_crop: bool = True,
    benchmark_dir: str | Path | None = None,
    progress: bool = True,
    source: str | Path = "<lines>",
    gt_source: str | Path | None = None,
) -> EvalResult:
    """Run a checkpoint on the frames of ``lines`` and score it against ``gt_depths`` (one per line).

    Without ``gt_depths`` the ground truth is projected from the Velodyne scans (or read from
    ``benchmark_dir``). ``scaling`` defaults to the checkpoint's training mode; ``img_ext`` to its
    config's. The images are resized to the checkpoint's training resolution. ``source`` (the split
    file) is named by errors about a line. With ``gt_source`` (the file ``gt_depths`` came from),
    every map must be its image's size (:func:`check_gt_sizes`), before the network runs.
    """
    from mldanet.data.dataset import KittiRawDataset
    from mldanet.evaluation.inference import predict_disparities
    from mldanet.training.checkpoint import load_depth_net
    from mldanet.device import resolve_device
    from mldanet.types import collate_samples

    if gt_depths is not None and len(gt_depths) != len(lines):
        raise ValueError(
            f"{len(lines)} test frames but {len(gt_depths)} ground-truth depth maps: "
            "the ground truth must be exported from the same split"
        )
    torch_device = resolve_device(device)
    net, config = load_depth_net(checkpoint, torch_device)
    scaling = scaling or scaling_for_mode(config.train.mode)
    dataset = KittiRawDataset(
        data_path, list(lines), config.data.height, config.data.width, frame_ids=(0,), train=False,
        img_ext=img_ext or config.data.img_ext, source=source,
    )
    if gt_depths is not None and gt_source is not None:
        images = [dataset.frame_path(*item, 0) for item in dataset.items]
        check_gt_sizes(gt_depths, images, dataset.lines, gt_source, source)
    if gt_depths is None:
        gt_depths = velodyne_ground_truth(data_path, lines, benchmark_dir, progress)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_samples,
        pin_memory=torch_device.type == "cuda",
    )
    pred_disps = predict_disparities(
        net, loader, batch_size=batch_size, device=str(torch_device), post_process=post_process, progress=progress,
        min_depth=config.loss.min_depth, max_depth=config.loss.max_depth,
    )
    return evaluate_disparities(pred_disps, gt_depths, scaling=scaling, eigen_crop=eigen_crop)


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
    parser.add_argument("--data-path", help="KITTI raw root (with --checkpoint)")
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
            raise ValueError("--checkpoint needs --data-path (the KITTI raw root)")
        require_dir(args.data_path, "data path")
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
    eigen_crop = not args.no_eigen_crop and not (args.split == BENCHMARK_SPLIT and not args.split_file)
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
        payload = {**result.to_dict(), **source, "gt": str(args.gt) if args.gt else "velodyne", "eigen_crop": eigen_crop}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
