"""Depth boundary errors: closed forms, an independent implementation (OpenCV's Canny, brute-force
float64 distances) and the evaluation protocol's boundary block."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mldanet.evaluation.boundaries import (
    BOUNDARY_KEYS,
    CANNY_HIGH,
    CANNY_LOW,
    CANNY_SIGMA,
    TRUNCATION,
    boundary_scores,
    depth_boundary_scores,
    depth_edges,
    edge_distance,
    is_dense,
    mean_boundary_scores,
    normalise_valid,
)
from mldanet.evaluation.protocol import evaluate_disparities

HEIGHT, WIDTH = 96, 160


def boxes(rng: np.random.Generator | None = None, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A wall at 40 m with boxes at 5–20 m in front of it, all away from the borders."""
    depth = np.full((HEIGHT, WIDTH), 40.0)
    rects = [(20, 30, 50, 70, 10.0), (40, 90, 75, 140, 5.0)]
    if rng is not None:
        rects = [
            (int(t), int(l), int(t + rng.integers(15, 30)), int(l + rng.integers(15, 40)), float(rng.uniform(5, 20)))
            for t, l in zip(rng.integers(15, HEIGHT - 45, 3), rng.integers(15, WIDTH - 55, 3))
        ]
    dy, dx = shift
    for top, left, bottom, right, value in rects:
        depth[top + dy : bottom + dy, left + dx : right + dx] = value
    return depth


def test_ground_truth_against_itself_scores_zero():
    depth = boxes()
    scores = depth_boundary_scores(depth, depth, np.ones(depth.shape, bool))
    assert scores.dbe_acc == 0 and scores.dbe_comp == 0
    assert scores.edge_precision == scores.edge_recall == scores.edge_f1 == 1


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_a_diagonal_shift_of_k_pixels_scores_about_k(k):
    gt, pred = boxes(), boxes(shift=(k, k))
    scores = depth_boundary_scores(pred, gt, np.ones(gt.shape, bool))
    # Along every side of a box the shifted edge is k away; only near the corners is it nearer.
    # (A 1-px shift can put a step's edge on the same pixel: the detector marks either side of a step.)
    assert 0.9 * k - 0.35 <= scores.dbe_acc <= k + 0.1
    assert 0.9 * k - 0.35 <= scores.dbe_comp <= k + 0.1
    assert (scores.edge_recall > 0.9) == (k <= 2)


def test_a_flat_prediction_scores_the_truncation():
    gt = boxes()
    scores = depth_boundary_scores(np.full(gt.shape, 12.0), gt, np.ones(gt.shape, bool))
    assert scores.dbe_acc == scores.dbe_comp == TRUNCATION
    assert scores.edge_precision == scores.edge_recall == scores.edge_f1 == 0


def test_far_edges_are_truncated_and_left_out_of_accuracy():
    gt = np.zeros((40, 60), bool)
    gt[20, 5:55] = True
    pred = np.zeros_like(gt)
    pred[22, 5:55] = True  # 2 px away
    pred[35, 5:55] = True  # 15 px away: beyond θ, not in ε_acc
    scores = boundary_scores(gt, pred)
    assert scores.dbe_acc == pytest.approx(2.0)
    assert scores.dbe_comp == pytest.approx(2.0)
    assert scores.edge_precision == pytest.approx(0.5) and scores.edge_recall == 1.0
    assert scores.edge_f1 == pytest.approx(2 * 0.5 / 1.5)


def reference_edges(depth: np.ndarray) -> np.ndarray:
    """An independent detector: OpenCV's Gaussian, Sobel and Canny (its own non-maximum suppression
    and hysteresis) on the min–max normalised map; thresholds as iBims-1's."""
    scaled = (depth - depth.min()) / (depth.max() - depth.min())
    smooth = cv2.GaussianBlur(scaled, (0, 0), CANNY_SIGMA, borderType=cv2.BORDER_REPLICATE)
    unit = 1000.0  # Canny takes 16-bit derivatives: keep three decimals of the gradient
    dx = np.round(cv2.Sobel(smooth, cv2.CV_64F, 1, 0, ksize=3) * unit).astype(np.int16)
    dy = np.round(cv2.Sobel(smooth, cv2.CV_64F, 0, 1, ksize=3) * unit).astype(np.int16)
    return cv2.Canny(dx, dy, CANNY_LOW * unit, CANNY_HIGH * unit, L2gradient=True) > 0


def reference_scores(gt_edges: np.ndarray, pred_edges: np.ndarray) -> tuple[float, float]:
    """ε_acc, ε_comp from all pairwise distances in float64 (no distance transform)."""
    gt_points = np.argwhere(gt_edges).astype(np.float64)
    pred_points = np.argwhere(pred_edges).astype(np.float64)
    pairwise = np.sqrt(((pred_points[:, None, :] - gt_points[None, :, :]) ** 2).sum(-1))
    to_gt, to_pred = pairwise.min(axis=1), pairwise.min(axis=0)
    near = to_gt[to_gt < TRUNCATION]
    return (near.mean() if near.size else TRUNCATION), np.minimum(to_pred, TRUNCATION).mean()


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_an_independent_implementation(seed):
    gt = boxes(np.random.default_rng(seed))
    # The same boxes, moved, blurred and noisy: a prediction with edges near, not on, the true ones.
    pred = boxes(np.random.default_rng(seed), shift=(seed % 3, 2)) + np.random.default_rng(seed).normal(0, 0.3, gt.shape)
    pred = cv2.GaussianBlur(pred, (0, 0), 1.5)
    valid = np.ones(gt.shape, bool)
    ours = depth_boundary_scores(pred, gt, valid)
    gt_ref, pred_ref = reference_edges(gt), reference_edges(pred)
    # The two detectors mark the same edges (at most a pixel apart)...
    assert np.mean(edge_distance(depth_edges(gt))[gt_ref] <= 1) > 0.95
    acc, comp = reference_scores(gt_ref, pred_ref)
    # ...and score them alike, within half a pixel (the detectors break ties at a step differently).
    assert ours.dbe_acc == pytest.approx(acc, abs=0.5)
    assert ours.dbe_comp == pytest.approx(comp, abs=0.5)
    # Our scores on our edges equal the brute-force ones on the same edges exactly.
    mine = boundary_scores(depth_edges(gt), depth_edges(pred))
    exact = reference_scores(depth_edges(gt), depth_edges(pred))
    assert (mine.dbe_acc, mine.dbe_comp) == pytest.approx(exact, abs=1e-9)


def test_invalid_pixels_make_no_edges():
    depth = boxes()
    valid = np.ones(depth.shape, bool)
    valid[:, 150:] = False
    depth[:, 150:] = 0.0  # unknown: without the fill this border would be the strongest edge
    edges = depth_edges(depth, valid)
    assert not edges[:, 145:].any()
    assert edges[:, :145].any()
    filled = normalise_valid(depth, valid)
    assert filled.min() == 0 and filled.max() == 1
    np.testing.assert_array_equal(filled[:, 150:], filled[:, 149:150].repeat(WIDTH - 150, axis=1))


def test_edges_ignore_the_depth_scale():
    depth = boxes()
    np.testing.assert_array_equal(depth_edges(depth), depth_edges(3.7 * depth))


def test_bad_input_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(96, 160\).*\(96, 150\)"):
        depth_boundary_scores(np.ones((96, 160)), np.ones((96, 150)), np.ones((96, 150), bool))
    with pytest.raises(ValueError, match="edge maps differ"):
        boundary_scores(np.ones((4, 4), bool), np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="no valid pixel"):
        normalise_valid(np.ones((4, 4)), np.zeros((4, 4), bool))


def test_no_ground_truth_edges_no_score_and_means_skip_them():
    flat = np.full((40, 60), 10.0)
    assert depth_boundary_scores(flat, flat, np.ones(flat.shape, bool)) is None
    gt = boxes()
    one = depth_boundary_scores(gt, gt, np.ones(gt.shape, bool))
    mean = mean_boundary_scores([one, None])
    assert mean["count"] == 1 and mean["dbe_comp"] == 0
    assert mean_boundary_scores([None]) is None


def test_dense_means_most_pixels_measured():
    depth = boxes()
    assert is_dense(depth)
    sparse = np.zeros_like(depth)
    sparse[::5, ::5] = depth[::5, ::5]
    assert not is_dense(sparse)


def test_protocol_scores_boundaries_on_dense_ground_truth_only():
    gt = boxes()
    disp = 5.4 / boxes(shift=(2, 2))
    dense = evaluate_disparities([disp], [gt], scaling="stereo", eigen_crop=False)
    assert set(dense.boundary) == {*BOUNDARY_KEYS, "count"}
    assert dense.to_dict()["boundary"]["dbe_comp"] == pytest.approx(dense.boundary["dbe_comp"])
    assert 1.5 <= dense.boundary["dbe_comp"] <= 2.1
    # Median scaling and a low-resolution prediction score the same edges.
    small = cv2.resize(disp, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_NEAREST)
    median = evaluate_disparities([7 * small], [gt], scaling="median", eigen_crop=False)
    assert median.boundary["dbe_comp"] < 3
    sparse = np.zeros_like(gt)
    sparse[::5, ::5] = gt[::5, ::5]
    result = evaluate_disparities([disp], [sparse], scaling="stereo", eigen_crop=False)
    assert result.boundary is None and "boundary" not in result.to_dict()
