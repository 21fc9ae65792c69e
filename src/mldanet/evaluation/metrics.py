"""The seven standard depth metrics (Eigen et al. 2014, as monodepth2 computes them)."""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
# The errors, of these and of the depth boundaries (evaluation/boundaries.py); the others are ratios
# of pixels or edges to maximise.
LOWER_IS_BETTER = frozenset({"abs_rel", "sq_rel", "rmse", "rmse_log", "dbe_acc", "dbe_comp"})


def is_better(metric: str, value: float, other: float) -> bool:
    """``value`` of ``metric`` is strictly better than ``other``: lower for an error, higher otherwise."""
    return value < other if metric in LOWER_IS_BETTER else value > other


def compute_depth_metrics(gt: np.ndarray, pred: np.ndarray) -> dict[str, np.float64]:
    """Metrics of predicted depths ``pred`` against ground truth ``gt`` (same shape, both > 0).

    abs_rel = mean(|gt − pred| / gt), sq_rel = mean((gt − pred)² / gt), rmse, rmse_log (natural
    log) and a_k = fraction of pixels with max(gt/pred, pred/gt) < 1.25^k, all in float64.
    """
    gt = np.asarray(gt, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth has {gt.size} values but the prediction {pred.size}")
    if gt.size == 0:
        raise ValueError("no pixels to evaluate")
    ratio = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    return {
        "abs_rel": np.mean(np.abs(diff) / gt),
        "sq_rel": np.mean(diff**2 / gt),
        "rmse": np.sqrt(np.mean(diff**2)),
        "rmse_log": np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2)),
        "a1": np.mean(ratio < 1.25),
        "a2": np.mean(ratio < 1.25**2),
        "a3": np.mean(ratio < 1.25**3),
    }
