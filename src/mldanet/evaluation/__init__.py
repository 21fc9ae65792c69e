"""Evaluation: the 7 depth metrics, monodepth2's Eigen protocol, batched inference, a checkpoint on a dataset
(``evaluate``), validation during training (``validation``)."""

from mldanet.evaluation.metrics import METRIC_NAMES, compute_depth_metrics
from mldanet.evaluation.protocol import EvalResult, evaluate_disparities, format_metrics_row, post_process_disparity

__all__ = [
    "METRIC_NAMES",
    "EvalResult",
    "compute_depth_metrics",
    "evaluate_disparities",
    "format_metrics_row",
    "post_process_disparity",
]
