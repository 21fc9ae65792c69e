import itertools

import pytest
import torch
import torch.nn.functional as F

from mldanet.filters import box_mean_clipped, box_mean_valid, box_sum


def random_planes(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def brute_force_clipped_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    height, width = x.shape[-2:]
    out = torch.empty_like(x)
    for i, j in itertools.product(range(height), range(width)):
        window = x[..., max(0, i - radius) : i + radius + 1, max(0, j - radius) : j + radius + 1]
        out[..., i, j] = window.mean(dim=(-2, -1))
    return out


@pytest.mark.parametrize("size", [1, 3, 5])
def test_box_sum_is_the_sum_of_every_valid_window(size):
    padded = random_planes(2, 3, 6 + size - 1, 8 + size - 1, seed=size)
    expected = F.avg_pool2d(padded, kernel_size=size, stride=1) * size * size
    assert torch.allclose(box_sum(padded, size), expected, atol=1e-12)


def weighted_sum_gradient(function, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """d/dx Σ weights·function(x), by autograd (x: a float64 leaf)."""
    x = x.detach().requires_grad_()
    (function(x) * weights).sum().backward()
    return x.grad


def test_box_mean_valid_equals_average_pooling_values_and_gradients():
    padded = random_planes(2, 3, 9, 11, seed=1)
    weights = random_planes(2, 3, 7, 9, seed=2)
    reference = lambda x: F.avg_pool2d(x, kernel_size=3, stride=1)  # noqa: E731
    assert torch.allclose(box_mean_valid(padded, 3), reference(padded), atol=1e-12)
    ours = weighted_sum_gradient(lambda x: box_mean_valid(x, 3), padded, weights)
    assert torch.allclose(ours, weighted_sum_gradient(reference, padded, weights), atol=1e-12)


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_box_mean_clipped_matches_a_float64_brute_force_at_the_borders_too(radius):
    x = random_planes(2, 4, 7, 10, seed=radius)
    assert torch.allclose(box_mean_clipped(x, radius), brute_force_clipped_mean(x, radius), atol=1e-12)


def test_box_mean_clipped_keeps_float32_and_a_constant_image():
    x = torch.full((1, 2, 5, 6), 0.25)
    out = box_mean_clipped(x, 2)
    assert out.dtype == torch.float32
    assert torch.allclose(out, x, atol=1e-7)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_box_sum_gradient_is_the_adjoint_of_the_window_sum(size):
    padded = random_planes(1, 2, 5 + size - 1, 6 + size - 1, seed=20 + size).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: box_sum(x, size), (padded,))


def test_box_mean_clipped_gradient_matches_average_pooling():
    x = random_planes(2, 3, 6, 7, seed=30)
    weights = random_planes(2, 3, 6, 7, seed=31)
    ours = weighted_sum_gradient(lambda v: box_mean_clipped(v, 2), x, weights)
    reference = weighted_sum_gradient(lambda v: F.avg_pool2d(v, 5, stride=1, padding=2, count_include_pad=False), x, weights)
    assert torch.allclose(ours, reference, atol=1e-12)
