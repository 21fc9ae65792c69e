"""The seven depth metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mldanet.evaluation.metrics import METRIC_NAMES, compute_depth_metrics


def test_metrics_match_hand_computed_values():
    gt = np.array([1.0, 2.0, 4.0])
    pred = np.array([1.0, 2.5, 2.0])  # ratios max(gt/pred, pred/gt): 1, 1.25, 2
    metrics = compute_depth_metrics(gt, pred)
    assert list(metrics) == list(METRIC_NAMES)
    assert metrics["abs_rel"] == pytest.approx((0 + 0.5 / 2 + 2 / 4) / 3, abs=1e-15)
    assert metrics["sq_rel"] == pytest.approx((0 + 0.25 / 2 + 4 / 4) / 3, abs=1e-15)
    assert metrics["rmse"] == pytest.approx(math.sqrt((0 + 0.25 + 4) / 3), abs=1e-15)
    assert metrics["rmse_log"] == pytest.approx(math.sqrt((math.log(2 / 2.5) ** 2 + math.log(2) ** 2) / 3), abs=1e-15)
    # δ < 1.25^k is strict: the pixel at exactly 1.25 fails a1; 2 > 1.25³ = 1.953 fails a3.
    assert metrics["a1"] == pytest.approx(1 / 3)
    assert metrics["a2"] == pytest.approx(2 / 3)
    assert metrics["a3"] == pytest.approx(2 / 3)
    assert all(isinstance(v, np.float64) for v in metrics.values())


def test_perfect_prediction_and_float64_precision():
    gt = np.linspace(1.0, 80.0, 1000, dtype=np.float32)
    metrics = compute_depth_metrics(gt, gt.copy())
    assert metrics["abs_rel"] == metrics["sq_rel"] == metrics["rmse"] == metrics["rmse_log"] == 0.0
    assert metrics["a1"] == metrics["a2"] == metrics["a3"] == 1.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="3 values but the prediction 2"):
        compute_depth_metrics(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="no pixels"):
        compute_depth_metrics(np.ones(0), np.ones(0))
