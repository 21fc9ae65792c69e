"""Edge-aware smoothness against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from mldanet.losses.smoothness import edge_aware_smoothness


def ramp(height: int, width: int, offset: float, slope: float) -> torch.Tensor:
    return (offset + slope * torch.arange(width, dtype=torch.float64)).expand(1, 1, height, width).clone()


def test_constant_disparity_is_perfectly_smooth():
    image = torch.rand(2, 3, 6, 9)
    assert edge_aware_smoothness(torch.full((2, 1, 6, 9), 0.3), image).item() == pytest.approx(0.0, abs=1e-7)


def test_linear_ramp_on_a_flat_image():
    height, width, offset, slope = 5, 9, 0.2, 0.05
    disp = ramp(height, width, offset, slope)
    flat = torch.full((1, 3, height, width), 0.5, dtype=torch.float64)
    mean = offset + slope * (width - 1) / 2
    # rel=1e-5: the mean disparity carries a 1e-7 stabiliser
    assert edge_aware_smoothness(disp, flat).item() == pytest.approx(slope / mean, rel=1e-5)


def test_an_image_edge_discounts_the_disparity_gradient_across_it():
    height, width, offset, slope, step = 4, 8, 0.1, 0.02, 0.7
    disp = ramp(height, width, offset, slope)
    image = torch.zeros(1, 3, height, width, dtype=torch.float64)
    image[..., 5:] = step  # vertical edge between columns 4 and 5
    mean = offset + slope * (width - 1) / 2
    expected = slope / mean * ((width - 2) + math.exp(-step)) / (width - 1)
    assert edge_aware_smoothness(disp, image).item() == pytest.approx(expected, rel=1e-5)


def test_smoothness_is_invariant_to_the_disparity_scale():
    disp, image = torch.rand(2, 1, 6, 8) + 0.1, torch.rand(2, 3, 6, 8)
    scaled = edge_aware_smoothness(7 * disp, image)
    assert edge_aware_smoothness(disp, image).item() == pytest.approx(scaled.item(), rel=1e-5)


def test_image_of_another_size_is_rejected():
    with pytest.raises(ValueError, match=r"disp \(1, 1, 4, 8\), image \(1, 3, 8, 16\)"):
        edge_aware_smoothness(torch.rand(1, 1, 4, 8), torch.rand(1, 3, 8, 16))
