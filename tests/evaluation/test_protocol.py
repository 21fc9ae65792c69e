"""The Eigen evaluation protocol against hand-built cases with independently computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mldanet.evaluation.metrics import METRIC_NAMES
from mldanet.evaluation.protocol import (
    eigen_crop_mask,
    evaluate_disparities,
    format_metrics_row,
    post_process_disparity,
)


def reference_metrics(pairs: list[tuple[float, float]]) -> dict[str, float]:
    """The 7 metrics from (gt, pred) pairs, written out term by term in plain Python floats."""
    n = len(pairs)
    ratios = [max(g / p, p / g) for g, p in pairs]
    return {
        "abs_rel": sum(abs(g - p) / g for g, p in pairs) / n,
        "sq_rel": sum((g - p) ** 2 / g for g, p in pairs) / n,
        "rmse": math.sqrt(sum((g - p) ** 2 for g, p in pairs) / n),
        "rmse_log": math.sqrt(sum((math.log(g) - math.log(p)) ** 2 for g, p in pairs) / n),
        "a1": sum(r < 1.25 for r in ratios) / n,
        "a2": sum(r < 1.25**2 for r in ratios) / n,
        "a3": sum(r < 1.25**3 for r in ratios) / n,
    }


def mean_of(*per_image: dict[str, float]) -> dict[str, float]:
    return {k: sum(m[k] for m in per_image) / len(per_image) for k in METRIC_NAMES}


def assert_metrics(actual: dict[str, float], expected: dict[str, float], rel: float = 1e-6) -> None:
    for name in METRIC_NAMES:
        assert actual[name] == pytest.approx(expected[name], rel=rel, abs=1e-9), name


def test_eigen_crop_bounds_on_the_kitti_size():
    # 0.40810811·375 = 153.04, 0.99189189·375 = 371.96, 0.03594771·1242 = 44.65, 0.96405229·1242 = 1197.35
    mask = eigen_crop_mask(375, 1242)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (153, 370, 44, 1196)
    assert mask.sum() == (371 - 153) * (1197 - 44)


def test_stereo_scaling_crop_valid_range_and_clipping():
    # Image 1, 10×40: the crop is rows 4..8, columns 1..37.
    gt1 = np.zeros((10, 40), np.float32)
    disp1 = np.full((10, 40), 10.0, np.float32)  # depth 0.54 m wherever it should not count
    for (r, c), g, pred in (((5, 10), 10.0, 12.0), ((6, 20), 20.0, 16.0), ((8, 37), 40.0, 100.0)):
        gt1[r, c], disp1[r, c] = g, 5.4 / pred
    for r, c in ((3, 10), (9, 20), (5, 0), (5, 38)):  # outside the crop
        gt1[r, c] = 5.0
    gt1[7, 5], gt1[7, 6] = 85.0, 0.0005  # outside (1e-3, 80)
    # Image 2, 20×30: the crop is rows 8..18, columns 1..27; one prediction clips at 1e-3.
    gt2 = np.zeros((20, 30), np.float32)
    disp2 = np.full((20, 30), 10.0, np.float32)
    gt2[10, 5], disp2[10, 5] = 8.0, 5.4 / 8.0
    gt2[15, 20], disp2[15, 20] = 30.0, 1e4

    result = evaluate_disparities([disp1, disp2], [gt1, gt2], scaling="stereo")

    def scaled(disp: float) -> float:  # what the float32 disparity really encodes
        return 5.4 / float(np.float32(disp))

    image1 = reference_metrics([(10.0, scaled(5.4 / 12)), (20.0, scaled(5.4 / 16)), (40.0, 80.0)])
    image2 = reference_metrics([(8.0, scaled(5.4 / 8)), (30.0, 1e-3)])
    assert_metrics(result.metrics, mean_of(image1, image2))
    assert_metrics(dict(zip(METRIC_NAMES, result.per_image[0])), image1)
    assert result.scaling == "stereo" and result.count == 2 and result.skipped == []
    assert result.ratio_median is None
    assert result.to_dict()["stereo_factor"] == 5.4


def test_median_scaling_and_ratio_statistics():
    rng = np.random.default_rng(0)
    gts, disps = [], []
    crop = eigen_crop_mask(10, 40)
    for k in (2.0, 4.0, 3.0):  # predictions exactly gt / k: perfect after scaling, ratio k
        gt = np.where(crop, rng.uniform(1.0, 70.0, (10, 40)), 0.0).astype(np.float32)
        gts.append(gt)
        disps.append(np.where(crop, k / np.maximum(gt, 1e-3), 1.0).astype(np.float32))
    gt = np.zeros((10, 40), np.float32)
    disp = np.ones((10, 40), np.float32)
    gt[5, 5:8] = [10.0, 20.0, 30.0]
    disp[5, 5:8] = [1.0, 1.0, 1 / 3]  # depth 1, 1, 3: ratio 20/1 → 20, 20, 60
    gts.append(gt)
    disps.append(disp)

    result = evaluate_disparities(disps, gts, scaling="median")

    perfect = reference_metrics([(1.0, 1.0)])
    last = reference_metrics([(10.0, 20.0), (20.0, 20.0), (30.0, 60.0)])
    assert_metrics(result.metrics, mean_of(perfect, perfect, perfect, last), rel=1e-5)
    np.testing.assert_allclose(result.ratios, [2, 4, 3, 20], rtol=1e-6)
    ratios = [2.0, 4.0, 3.0, 20.0]
    median = 3.5
    normalised = [r / median for r in ratios]
    mean = sum(normalised) / 4
    assert result.ratio_median == pytest.approx(median, rel=1e-6)
    assert result.ratio_std == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in normalised) / 4), rel=1e-5)
    summary = result.to_dict()
    assert summary["scaling"] == "median" and summary["ratio_median"] == result.ratio_median
    assert "stereo_factor" not in summary


def test_prediction_is_resized_bilinearly_with_half_pixel_centres():
    gt = np.full((20, 60), 10.0, np.float32)
    columns = np.arange(30)
    half = np.tile(0.2 + 0.01 * columns, (10, 1)).astype(np.float32)
    result = evaluate_disparities([half], [gt], scaling="stereo")
    # Full-resolution column u samples the half-resolution map at u/2 − 0.25; the crop keeps
    # rows 8..18 and columns 2..56, all away from the clamped borders.
    pairs = [(10.0, 5.4 / (0.2 + 0.01 * (u / 2 - 0.25))) for _ in range(8, 19) for u in range(2, 57)]
    assert_metrics(result.metrics, reference_metrics(pairs), rel=1e-5)


def test_without_crop_every_valid_pixel_counts():
    gt = np.zeros((10, 40), np.float32)
    gt[0, 0], gt[5, 10] = 4.0, 8.0  # (0, 0) lies outside the crop
    disp = np.full((10, 40), 5.4 / 8.0, np.float32)
    cropped = evaluate_disparities([disp], [gt], eigen_crop=True)
    whole = evaluate_disparities([disp], [gt], eigen_crop=False)
    assert cropped.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert whole.metrics["abs_rel"] == pytest.approx((1.0 + 0.0) / 2, rel=1e-6)


def test_images_without_valid_ground_truth_are_skipped_and_counted():
    empty = np.zeros((10, 40), np.float32)
    gt = np.zeros((10, 40), np.float32)
    gt[5, 10] = 8.0
    disp = np.full((10, 40), 5.4 / 8.0, np.float32)
    result = evaluate_disparities([disp, disp], [empty, gt])
    assert result.skipped == [0] and result.count == 1
    assert np.isnan(result.per_image[0]).all()
    assert result.metrics["a1"] == 1.0
    with pytest.raises(ValueError, match="none of the 1 ground-truth maps has a valid pixel"):
        evaluate_disparities([disp], [empty])


def test_count_mismatch_is_refused_with_both_counts():
    with pytest.raises(ValueError, match=r"5 predicted disparities but 7 ground-truth"):
        evaluate_disparities([np.ones((4, 4))] * 5, [np.ones((4, 4))] * 7)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="'mean'"):
        evaluate_disparities([np.ones((4, 4))], [np.ones((4, 4))], scaling="mean")
    with pytest.raises(ValueError, match=r"frame 0: expected 2-D maps.*\(1, 4, 4\)"):
        evaluate_disparities([np.ones((1, 4, 4))], [np.ones((4, 4))])


def test_post_processing_blends_borders_and_middle():
    w = 201  # columns at x = 0, 0.005, ..., 1
    a, b = 2.0, 6.0  # l_disp ≡ a, mirrored pass ≡ b
    out = post_process_disparity(np.full((3, w), a), np.full((3, w), b))
    mean = (a + b) / 2
    np.testing.assert_allclose(out[:, :11], b)  # x ≤ 0.05: the mirrored pass
    np.testing.assert_allclose(out[:, 190:], a)  # x ≥ 0.95: the image's own pass
    np.testing.assert_allclose(out[:, 20:181], mean)  # 0.1 ≤ x ≤ 0.9: the mean
    np.testing.assert_allclose(out[:, 15], 0.5 * b + 0.5 * mean)  # x = 0.075: half-way down the ramp
    np.testing.assert_allclose(out[:, 185], 0.5 * a + 0.5 * mean)
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(3, 5\)"):
        post_process_disparity(np.ones((3, 4)), np.ones((3, 5)))


def test_metrics_row_prints_like_papers():
    metrics = dict(zip(METRIC_NAMES, (0.1054, 0.8162, 4.6901, 0.1904, 0.8781, 0.9594, 0.9814)))
    header, values = format_metrics_row(metrics).splitlines()
    assert header.split(" & ") == [f"{name:>8}" for name in METRIC_NAMES]
    assert [v.strip() for v in values.rstrip(" \\").split(" & ")] == ["0.105", "0.816", "4.690", "0.190", "0.878", "0.959", "0.981"]
    assert len(header) == len(values.rstrip(" \\"))


def test_ground_truth_in_millimetres_is_named_when_nothing_is_scored():
    """Issue 27, case 4: the error said no pixel was valid, not why."""
    gt = np.full((20, 60), 12000.0)  # 12 m in millimetres
    with pytest.raises(ValueError, match=r"none of the 1 ground-truth maps has a valid pixel .*: their values are mostly "
                                         r"beyond 80 \(median 12000\), probably millimetres \(divide by 1000\)"):
        evaluate_disparities([np.ones((10, 30))], [gt], scaling="median", eigen_crop=False)
    with pytest.raises(ValueError) as empty:
        evaluate_disparities([np.ones((10, 30))], [np.zeros((20, 60))], scaling="median", eigen_crop=False)
    assert "beyond" not in str(empty.value)


def test_the_folder_reader_checks_the_range_the_protocol_scores():
    import inspect

    from mldanet.data.folder import SCORED_DEPTH

    parameters = inspect.signature(evaluate_disparities).parameters
    assert SCORED_DEPTH == (parameters["min_depth"].default, parameters["max_depth"].default)
