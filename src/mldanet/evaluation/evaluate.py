"""Evaluating a checkpoint on a dataset (what ``mldanet evaluate`` runs): the 7 depth metrics.

Two sources of predictions:

* ``--checkpoint CKPT --data-path ROOT --split eigen``: the network runs on the split's test
  frames at the resolution it was trained at; ground truth comes from ``--gt gt_depths.npz``
  (``mldanet export-gt``) or, without it, from the Velodyne scans on the fly (a folder dataset:
  its depth maps). The checkpoint's training mode picks the scaling (S/MS: stereo ×baseline/0.1,
  5.4 on KITTI; M: median) unless ``--scaling`` says.
* ``--pred-disps FILE.npy --gt gt_depths.npz --scaling {median,stereo}``: N×h×w scaled
  disparities (monodepth2's ``--ext_disp_to_eval``), in the ground truth's order.

The Garg/Eigen crop is applied except for ``eigen_benchmark`` (whose annotated maps monodepth2
scores uncropped) or with ``--no-eigen-crop``.

Ground truth given with ``--gt`` must be of the split's frames: a file from ``mldanet export-gt``
stores the split lines and is refused when they differ; every map must have its image's size.
With ``--pred-disps``, each disparity must have its map's aspect ratio within 5 %
(:func:`check_pred_aspects`): it is resized to the map, and a larger stretch means other frames.
A folder dataset's own depth maps are read as validation reads them
(:func:`mldanet.data.folder.read_frame_depth`): one file per frame, at its frame's aspect ratio.
Paths are checked (``--json`` writable included) before anything is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from mldanet.data.npy import load_npy
from mldanet.units import metric_scale
from mldanet.evaluation.protocol import EvalResult, evaluate_disparities

# A prediction is resized to its ground truth (monodepth2's protocol); KITTI's own case, 640×192
# against 1242×375, differs in aspect ratio by 0.7 %, a transposed or square map by far more.
PRED_ASPECT_TOLERANCE = 0.05


def benchmark_ground_truth(
    data_path: str | Path, benchmark_dir: str | Path, lines: Sequence[str], progress: bool = True
) -> list[np.ndarray]:
    """KITTI's annotated depth maps of every line (what ``mldanet export-gt`` saves for eigen_benchmark)."""
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


def check_pred_aspects(
    pred_disps: Sequence[np.ndarray], gt_depths: Sequence[np.ndarray], pred_path: str | Path, gt_path: str | Path,
    lines: Sequence[str] | None = None,
) -> None:
    """Refuse disparity ``i`` (h×w) whose aspect ratio w/h differs from ground-truth map ``i``'s (H×W)
    by more than :data:`PRED_ASPECT_TOLERANCE` (5 %): resized to the map, it would be stretched.
    ``lines``: the ground truth's split lines (named in the error when known)."""
    for i, (disp, gt) in enumerate(zip(pred_disps, gt_depths, strict=True)):
        (height, width), (gt_height, gt_width) = np.shape(disp)[-2:], np.shape(gt)[-2:]
        aspect, gt_aspect = width / height, gt_width / gt_height
        if abs(aspect / gt_aspect - 1) > PRED_ASPECT_TOLERANCE:
            line = f", line {i + 1}: '{lines[i].strip()}'" if lines is not None and i < len(lines) else ""
            raise ValueError(
                f"{pred_path}: disparity [{i}] is {width}×{height} (width/height {aspect:.3f}) but ground-truth map [{i}] of "
                f"{gt_path}{line} is {gt_width}×{gt_height} ({gt_aspect:.3f}): resizing one to the other would stretch it "
                f"by {100 * abs(aspect / gt_aspect - 1):.0f} % (more than {100 * PRED_ASPECT_TOLERANCE:.0f} %): they are "
                "not of the same frames, or one is transposed"
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
    eigen_crop: bool | None = None,
    benchmark_dir: str | Path | None = None,
    progress: bool = True,
    source: str | Path = "<lines>",
    gt_source: str | Path | None = None,
    dataset: str = "kitti",
    intrinsics: str = "",
) -> EvalResult:
    """Run a checkpoint on the frames of ``lines`` and score it against ``gt_depths`` (one per line).

    ``dataset`` names the layout of ``data_path`` (``kitti``, ``folder``, …); ``lines`` are its
    test lines (``FrameDataset.test_lines``). Without ``gt_depths`` the ground truth is the
    dataset's own (``FrameDataset.ground_truth``, what validation reads): KITTI's Velodyne scans, a
    folder's depth maps (frames without one are left out, and said so); or KITTI's annotated maps in
    ``benchmark_dir``.
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
    from mldanet.models.checkpoint import load_depth_net
    from mldanet.types import collate_samples

    if gt_depths is not None and len(gt_depths) != len(lines):
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
    if gt_depths is None and benchmark_dir is None:
        # the dataset's own ground truth, as validation reads it: frames without any are left out
        scored = cls.lines_with_ground_truth(data, list(lines))
        if len(scored) < len(lines):
            kept = set(scored)
            first = next(line for line in lines if line not in kept)
            print(f"{len(lines) - len(scored)} of {len(lines)} test frames have no depth map and are left out "
                  f"(first: {first.strip()})")
        lines = scored
    test_set = build_dataset(data, lines, (0,), train=False, source=source)
    if gt_depths is not None and gt_source is not None:
        images = [test_set.frame_path(item, 0) for item in test_set.items]
        check_gt_sizes(gt_depths, images, test_set.lines, gt_source, source)
    if benchmark_dir is not None and gt_depths is None:
        gt_depths = benchmark_ground_truth(data_path, benchmark_dir, test_set.lines, progress)
    elif gt_depths is None:
        gt_depths = [
            test_set.ground_truth(item)
            for item in tqdm(test_set.items, desc="ground truth", unit="frame", disable=not progress)
        ]
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
