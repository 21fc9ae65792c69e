"""SSIM and the photometric error against a direct float64 NumPy formula with explicit padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mldanet.losses.photometric import C1, C2, photometric_error, ssim


def reference_ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """clamp((1 − SSIM)/2, 0, 1) over 3×3 windows of the reflection-padded images, loop by loop."""
    pad = ((0, 0), (0, 0), (1, 1), (1, 1))
    xp, yp = np.pad(x, pad, mode="reflect"), np.pad(y, pad, mode="reflect")
    out = np.empty_like(x)
    batch, channels, height, width = x.shape
    for b in range(batch):
        for c in range(channels):
            for i in range(height):
                for j in range(width):
                    wx = xp[b, c, i : i + 3, j : j + 3].ravel()
                    wy = yp[b, c, i : i + 3, j : j + 3].ravel()
                    mx, my = wx.mean(), wy.mean()
                    vx, vy = ((wx - mx) ** 2).mean(), ((wy - my) ** 2).mean()
                    cov = ((wx - mx) * (wy - my)).mean()
                    value = (2 * mx * my + C1) * (2 * cov + C2) / ((mx**2 + my**2 + C1) * (vx + vy + C2))
                    out[b, c, i, j] = np.clip((1 - value) / 2, 0, 1)
    return out


def images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_ssim_matches_the_windowed_formula():
    x, y = images(2, 3, 6, 7, seed=1), images(2, 3, 6, 7, seed=2)
    y[:, :, :3] = x[:, :, :3] * 0.8 + 0.1  # partly correlated so both SSIM factors matter
    np.testing.assert_allclose(ssim(x, y).numpy(), reference_ssim(x.numpy(), y.numpy()), atol=1e-10)


def test_ssim_of_identical_images_is_zero():
    x = images(1, 3, 5, 8, seed=3)
    assert ssim(x, x).abs().max() < 1e-12
    assert ssim(x.float(), x.float()).abs().max() < 1e-6


def test_ssim_of_several_predictions_against_one_target_equals_separate_calls():
    preds, target = images(3, 2, 3, 5, 6, seed=4), images(2, 3, 5, 6, seed=5)
    stacked = ssim(preds, target)
    assert stacked.shape == preds.shape
    for i in range(3):
        assert torch.allclose(stacked[i], ssim(preds[i], target), atol=1e-12)


def test_photometric_error_matches_the_direct_formula():
    pred, target = images(2, 3, 5, 6, seed=6), images(2, 3, 5, 6, seed=7)
    alpha = 0.85
    p, t = pred.numpy(), target.numpy()
    expected = (alpha * reference_ssim(p, t) + (1 - alpha) * np.abs(p - t)).mean(axis=1, keepdims=True)
    np.testing.assert_allclose(photometric_error(pred, target, alpha).numpy(), expected, atol=1e-10)
    only_l1 = photometric_error(pred, target, alpha=0.0)
    assert torch.allclose(only_l1, (pred - target).abs().mean(1, keepdim=True))


def test_photometric_error_of_stacked_sources():
    preds, target = images(3, 2, 3, 5, 6, seed=8), images(2, 3, 5, 6, seed=9)
    stacked = photometric_error(preds, target)
    assert stacked.shape == (3, 2, 1, 5, 6)
    for i in range(3):
        assert torch.allclose(stacked[i], photometric_error(preds[i], target), atol=1e-12)


def test_mismatched_shapes_are_rejected_with_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3, 5, 6\) and \(2, 3, 5, 7\)"):
        photometric_error(torch.zeros(2, 3, 5, 6), torch.zeros(2, 3, 5, 7))
    with pytest.raises(ValueError, match="B×C×H×W"):
        ssim(torch.zeros(3, 5, 6), torch.zeros(3, 5, 6))

