"""Convolutions on small maps as one matrix product: the same values and gradients as F.conv2d."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mldanet.models import build_depth_net, build_pose_net, small_map_conv
from mldanet.models.decoder import ReflectConv3x3
from mldanet.models.small_map_conv import SmallMapConv2d, conv2d_as_matmul, small_maps_as_matmul


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "bias"),
    [
        ((3, 5, 2, 6), (7, 5, 3, 3), (1, 1), (1, 1), True),
        ((2, 4, 4, 12), (6, 4, 3, 3), (2, 2), (1, 1), False),
        ((2, 4, 4, 11), (3, 4, 1, 1), (2, 2), (0, 0), True),
        ((1, 2, 5, 7), (4, 2, 3, 2), (1, 2), (0, 1), False),
    ],
)
def test_matches_conv2d_in_float64_forward_and_backward(x_shape, w_shape, stride, padding, bias):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(x_shape, dtype=torch.float64, generator=generator, requires_grad=True)
    w = torch.randn(w_shape, dtype=torch.float64, generator=generator, requires_grad=True)
    b = torch.randn(w_shape[0], dtype=torch.float64, generator=generator, requires_grad=True) if bias else None
    upstream = None
    grads = []
    for conv in (F.conv2d, conv2d_as_matmul):
        out = conv(x, w, b, stride, padding)
        upstream = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        grads.append((out, *torch.autograd.grad(out, [t for t in (x, w, b) if t is not None], upstream)))
    for reference, ours in zip(*grads):
        assert ours.shape == reference.shape
        torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)


def test_trains_small_maps_as_a_product_and_leaves_the_rest_to_conv2d(monkeypatch):
    calls = []
    monkeypatch.setattr(small_map_conv, "conv2d_as_matmul", lambda *args: calls.append(args[0].shape) or F.conv2d(*args))
    conv = SmallMapConv2d(4, 6, 3, padding=1)
    conv(torch.randn(2, 4, 2, 6))  # 12 output pixels, with a weight that wants a gradient
    assert calls == [torch.Size([2, 4, 2, 6])]
    conv(torch.randn(2, 4, 8, 24))  # 192 output pixels: the convolution kernel
    with torch.no_grad():
        conv(torch.randn(2, 4, 2, 6))  # inference: the convolution kernel
    conv.requires_grad_(False)
    conv(torch.randn(2, 4, 2, 6))  # nothing to differentiate
    dilated = SmallMapConv2d(4, 6, 3, padding=2, dilation=2)
    dilated(torch.randn(2, 4, 2, 6))
    assert len(calls) == 1


def test_under_cpu_autocast_it_gives_conv2d_s_dtype():
    torch.manual_seed(0)
    plain = nn.Conv2d(4, 6, 3, padding=1)
    converted = small_maps_as_matmul(nn.Sequential(nn.Conv2d(4, 6, 3, padding=1)))[0]
    converted.load_state_dict(plain.state_dict())
    x = torch.randn(2, 4, 2, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, reference = converted(x), plain(x)
    assert ours.dtype == reference.dtype == torch.bfloat16
    torch.testing.assert_close(ours.float(), reference.float(), rtol=2e-2, atol=2e-2)


def test_a_converted_network_keeps_its_parameters_and_outputs():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2, padding=1))
    converted = small_maps_as_matmul(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2, padding=1)))
    converted.load_state_dict(plain.state_dict())
    assert list(converted.state_dict()) == list(plain.state_dict())
    assert all(type(m) is SmallMapConv2d for m in converted if isinstance(m, nn.Conv2d))
    x = torch.rand(2, 3, 4, 10, requires_grad=True)
    torch.testing.assert_close(converted(x), plain(x), rtol=1e-5, atol=1e-6)
    (grad_converted,) = torch.autograd.grad(converted(x).square().sum(), x)
    (grad_plain,) = torch.autograd.grad(plain(x).square().sum(), x)
    torch.testing.assert_close(grad_converted, grad_plain, rtol=1e-5, atol=1e-6)


def test_the_depth_and_pose_nets_are_built_with_it():
    for net in (build_depth_net("resnet18", "mlda"), build_depth_net("resnet18", "baseline"), build_pose_net()):
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        assert convs and all(isinstance(m, SmallMapConv2d) for m in convs)
    assert issubclass(ReflectConv3x3, SmallMapConv2d)
