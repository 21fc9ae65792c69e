"""The seven depth metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mldanet.evaluation.metrics import METRIC_NAMES, compute_depth_metrics, is_better


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


def test_is_better_is_lower_for_errors_higher_for_ratios_and_strict():
    assert is_better("abs_rel", 0.1, 0.2) and not is_better("abs_rel", 0.2, 0.1)
    assert is_better("dbe_comp", 3.0, 4.0) and is_better("a1", 0.9, 0.8) and is_better("edge_f1", 0.6, 0.5)
    assert not is_better("a1", 0.8, 0.9) and not is_better("rmse", 5.0, 5.0) and not is_better("a3", 0.9, 0.9)
