"""Depth boundary errors on dense ground truth (iBims-1, Koch et al. 2018; docs/METHOD.md §9.2).

Edges of a depth map: Canny (σ = √2, hysteresis thresholds 0.15 / 0.3 on the gradient of the
map normalised to [0, 1] over its valid pixels), the same detector for ground truth and
prediction. With D_gt, D_pred the Euclidean distance transforms of the two edge maps and θ = 10 px:

- ε_acc (``dbe_acc``): mean D_gt over the predicted edge pixels with D_gt < θ (how far the edges
  the network draws lie from true ones); θ when no predicted edge lies within θ of a true one;
- ε_comp (``dbe_comp``): mean min(D_pred, θ) over the ground-truth edge pixels (how far each true
  edge is from the nearest drawn one); θ for a prediction without edges;
- edge precision / recall / F1 at a tolerance of :data:`EDGE_TOLERANCE` px: the fraction of
  predicted edge pixels within the tolerance of a true edge, of true edge pixels within the
  tolerance of a predicted edge, and their harmonic mean (pixels are not matched one to one).

Pixels outside ``valid`` (the sky, unmeasured pixels, outside the crop) take the value of the
nearest valid pixel before the detector runs, in both maps, so that the border of the valid
region is never an edge, and edge pixels there are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.feature import canny

CANNY_SIGMA = math.sqrt(2.0)
CANNY_LOW, CANNY_HIGH = 0.15, 0.3
TRUNCATION = 10.0  # θ, pixels
EDGE_TOLERANCE = 2.0  # pixels, for precision / recall / F1
BOUNDARY_KEYS = ("dbe_acc", "dbe_comp", "edge_precision", "edge_recall", "edge_f1")


def normalise_valid(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """H×W depth → H×W float64 in [0, 1] over ``valid`` (min → 0, max → 1); every invalid pixel
    takes its nearest valid pixel's value. A map constant over ``valid`` is all 0."""
    depth = np.asarray(depth, dtype=np.float64)
    if not valid.any():
        raise ValueError("no valid pixel to normalise the depth map over")
    low, high = depth[valid].min(), depth[valid].max()
    scaled = (depth - low) / (high - low) if high > low else np.zeros_like(depth)
    if not valid.all():
        nearest = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
        scaled = scaled[tuple(nearest)]
    return scaled


def depth_edges(depth: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """H×W bool edges of a depth map by iBims-1's detector, restricted to ``valid`` (H×W bool)."""
    valid = np.ones(depth.shape, dtype=bool) if valid is None else valid
    edges = canny(normalise_valid(depth, valid), sigma=CANNY_SIGMA, low_threshold=CANNY_LOW, high_threshold=CANNY_HIGH)
    return edges & valid


@dataclass
class BoundaryScores:
    dbe_acc: float
    dbe_comp: float
    edge_precision: float
    edge_recall: float
    edge_f1: float

    def as_dict(self) -> dict[str, float]:
        return {key: float(getattr(self, key)) for key in BOUNDARY_KEYS}


def edge_distance(edges: np.ndarray) -> np.ndarray:
    """H×W float64: each pixel's Euclidean distance to the nearest edge pixel (inf without edges)."""
    if not edges.any():
        return np.full(edges.shape, np.inf)
    return ndimage.distance_transform_edt(~edges)


def boundary_scores(
    gt_edges: np.ndarray, pred_edges: np.ndarray, truncation: float = TRUNCATION, tolerance: float = EDGE_TOLERANCE
) -> BoundaryScores | None:
    """Scores of predicted edges against ground-truth edges (both H×W bool); None without ground-truth edges."""
    if gt_edges.shape != pred_edges.shape:
        raise ValueError(f"edge maps differ in shape: ground truth {gt_edges.shape}, prediction {pred_edges.shape}")
    if not gt_edges.any():
        return None
    to_gt, to_pred = edge_distance(gt_edges), edge_distance(pred_edges)
    near = to_gt[pred_edges]
    near = near[near < truncation]
    dbe_acc = float(near.mean()) if near.size else truncation
    dbe_comp = float(np.minimum(to_pred[gt_edges], truncation).mean())
    precision = float((to_gt[pred_edges] <= tolerance).mean()) if pred_edges.any() else 0.0
    recall = float((to_pred[gt_edges] <= tolerance).mean())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return BoundaryScores(dbe_acc, dbe_comp, precision, recall, f1)


def depth_boundary_scores(pred_depth: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray) -> BoundaryScores | None:
    """Boundary scores of an H×W predicted depth against an H×W dense ground truth over ``valid``."""
    if pred_depth.shape != gt_depth.shape or valid.shape != gt_depth.shape:
        raise ValueError(
            f"prediction {pred_depth.shape}, ground truth {gt_depth.shape} and mask {valid.shape} must be the same size"
        )
    if not valid.any():
        return None
    return boundary_scores(depth_edges(gt_depth, valid), depth_edges(pred_depth, valid))


def mean_boundary_scores(scores: Sequence[BoundaryScores | None]) -> dict[str, float] | None:
    """Mean of each score over the images that have ground-truth edges; None when none has."""
    kept = [s.as_dict() for s in scores if s is not None]
    if not kept:
        return None
    return {key: float(np.mean([s[key] for s in kept])) for key in BOUNDARY_KEYS} | {"count": len(kept)}


# Ground truth at least this dense (valid pixels over the frame) is "dense": boundaries are scored.
# A KITTI Velodyne map holds ~4-5 % of its pixels, KITTI's annotated maps ~15 %; a rendered or
# sensor depth map with only the sky missing 60 % or more.
DENSE_FRACTION = 0.5


def is_dense(gt_depth: np.ndarray) -> bool:
    """Whether a ground-truth map is dense enough for edges (:data:`DENSE_FRACTION` of its pixels valid)."""
    return float(np.mean(np.asarray(gt_depth) > 0)) >= DENSE_FRACTION


def format_boundary_row(boundary: dict[str, float]) -> str:
    """One console line: the boundary errors in pixels and the edge scores."""
    return (
        f"depth boundaries ({int(boundary['count'])} frames with edges): ε_acc {boundary['dbe_acc']:.2f} px, "
        f"ε_comp {boundary['dbe_comp']:.2f} px; edges within {EDGE_TOLERANCE:g} px: precision {boundary['edge_precision']:.3f}, "
        f"recall {boundary['edge_recall']:.3f}, F1 {boundary['edge_f1']:.3f}"
    )
