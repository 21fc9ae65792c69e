"""Weighted fast guided filter against float64 references derived independently of the implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from mldanet.models.guided_filter import fast_guided_filter

RADIUS = 2


def window(i: int, j: int, h: int, w: int, r: int = RADIUS) -> tuple[slice, slice]:
    return slice(max(i - r, 0), min(i + r + 1, h)), slice(max(j - r, 0), min(j + r + 1, w))


def bilinear_resize(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize of the last two axes, edge samples clamped."""
    h, w = image.shape[-2:]

    def taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, None)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    y0, y1, fy = taps(out_h, h)
    x0, x1, fx = taps(out_w, w)
    rows = image[..., y0, :] * (1 - fy)[:, None] + image[..., y1, :] * fy[:, None]
    return rows[..., x0] * (1 - fx) + rows[..., x1] * fx


def brute_force(x: np.ndarray, y: np.ndarray, w: np.ndarray, x_hr: np.ndarray, eps: float) -> np.ndarray:
    """Per window ω, minimise Σ_ω w(a·x + b − y)² + |ω|·λ·a² (He et al.'s per-pixel λ) by solving
    the 2×2 normal equations; average a, b over the windows covering each pixel; resize; apply."""
    channels, h, wd = x.shape
    a = np.zeros_like(x)
    b = np.zeros_like(x)
    for c in range(channels):
        for i in range(h):
            for j in range(wd):
                win = window(i, j, h, wd)
                xs, ys, ws = x[c][win].ravel(), y[c][win].ravel(), w[win].ravel()
                design = np.stack([xs, np.ones_like(xs)], axis=1)
                normal = design.T @ (ws[:, None] * design) + np.diag([xs.size * eps, 0.0])
                a[c, i, j], b[c, i, j] = np.linalg.solve(normal, design.T @ (ws * ys))
    mean_a = np.zeros_like(a)
    mean_b = np.zeros_like(b)
    for i in range(h):
        for j in range(wd):
            win = window(i, j, h, wd)
            mean_a[:, i, j] = a[(slice(None), *win)].mean(axis=(1, 2))
            mean_b[:, i, j] = b[(slice(None), *win)].mean(axis=(1, 2))
    out_h, out_w = x_hr.shape[-2:]
    return bilinear_resize(mean_a, out_h, out_w) * x_hr + bilinear_resize(mean_b, out_h, out_w)


def he_guided_filter(guide: np.ndarray, target: np.ndarray, eps: float, r: int = RADIUS) -> np.ndarray:
    """He et al.'s guided filter (unweighted), box means from scipy with windows clipped at the borders."""
    size = (1, 2 * r + 1, 2 * r + 1)

    def box(v: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(v, size, mode="constant") / ndimage.uniform_filter(
            np.ones_like(v), size, mode="constant"
        )

    mean_i, mean_p = box(guide), box(target)
    a = (box(guide * target) - mean_i * mean_p) / (box(guide * guide) - mean_i**2 + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def run(x: np.ndarray, y: np.ndarray, w: np.ndarray, x_hr: np.ndarray, eps: float) -> np.ndarray:
    tensors = [torch.from_numpy(v[None]).float() for v in (x, y, x_hr)]
    weight = torch.from_numpy(w[None, None]).float()
    out = fast_guided_filter(tensors[0], tensors[1], tensors[2], weight, radius=RADIUS, eps=eps)
    assert out.dtype == torch.float32
    return out[0].double().numpy()


@pytest.mark.parametrize("hr_size", [(9, 11), (18, 22), (20, 17)])
def test_matches_weighted_least_squares_brute_force(hr_size: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((2, 2, 9, 11))
    w = rng.uniform(0.05, 1.0, (9, 11))
    x_hr = rng.random((2, *hr_size))
    eps = 1e-2
    np.testing.assert_allclose(run(x, y, w, x_hr, eps), brute_force(x, y, w, x_hr, eps), atol=2e-5)


def test_unit_weights_is_he_guided_filter() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((3, 10, 13))
    y = 0.5 * x + 0.3 * rng.random((3, 10, 13))
    for eps in (1e-3, 1e-2, 1e-1):
        expected = he_guided_filter(x, y, eps)
        np.testing.assert_allclose(run(x, y, np.ones((10, 13)), x, eps), expected, atol=2e-5)


def test_constant_target_passes_through() -> None:
    rng = np.random.default_rng(2)
    x, x_hr = rng.random((2, 9, 11)), rng.random((2, 18, 22))
    y = np.stack([np.full((9, 11), 0.7), np.full((9, 11), -1.3)])
    out = run(x, y, rng.uniform(0.01, 1.0, (9, 11)), x_hr, eps=1e-2)
    np.testing.assert_allclose(out[0], 0.7, atol=1e-5)
    np.testing.assert_allclose(out[1], -1.3, atol=1e-5)


def test_linear_target_is_reproduced_and_zero_weights_are_ignored() -> None:
    """y = α·x + β per channel, except at zero-weight pixels (garbage there): out ≈ α·x_hr + β."""
    rng = np.random.default_rng(3)
    x, x_hr = rng.random((2, 12, 12)), rng.random((2, 24, 24))
    alpha, beta = np.array([2.0, -0.5])[:, None, None], np.array([0.1, 3.0])[:, None, None]
    y = alpha * x + beta
    w = rng.uniform(0.2, 1.0, (12, 12))
    ignored = np.zeros((12, 12), dtype=bool)
    ignored[::3, 1::3] = True  # every window still holds many valid pixels
    w[ignored] = 0.0
    y[:, ignored] = 50.0
    np.testing.assert_allclose(run(x, y, w, x_hr, eps=1e-9), alpha * x_hr + beta, atol=1e-3)


def test_half_precision_inputs_are_filtered_in_float32() -> None:
    torch.manual_seed(0)
    x, y, w = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8), torch.rand(1, 1, 8, 8)
    x_hr = torch.rand(1, 4, 16, 16)
    reference = fast_guided_filter(x, y, x_hr, w)
    out = fast_guided_filter(x.bfloat16(), y.bfloat16(), x_hr.bfloat16(), w.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, atol=0.03, rtol=0.03)


def test_bad_shapes_are_named() -> None:
    x, w = torch.rand(1, 2, 8, 8), torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"\(1, 2, 8, 8\).*\(1, 2, 8, 9\)"):
        fast_guided_filter(x, torch.rand(1, 2, 8, 9), x, w)
    with pytest.raises(ValueError, match=r"weight \(1, 2, 8, 8\)"):
        fast_guided_filter(x, x, x, torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"high-resolution guide \(1, 3, 16, 16\)"):
        fast_guided_filter(x, x, torch.rand(1, 3, 16, 16), w)
    with pytest.raises(ValueError, match="radius=0"):
        fast_guided_filter(x, x, x, w, radius=0)
