"""Channel attention against a direct einsum reimplementation; softmax saturation; structure attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mldanet.models.attention import ChannelAttention, GlobalAttention, StructureAttention


def einsum_channel_attention(module: ChannelAttention, f: torch.Tensor) -> torch.Tensor:
    """CA(f) = softmax(Q Vᵀ / sqrt(hw)) H + H, written out from the design's formula."""
    c = module.channels
    weight = module.hqv.weight
    h_f, q_f, v_f = (F.conv2d(f, weight[i * c : (i + 1) * c], padding=1) for i in range(3))
    hw = f.shape[-2] * f.shape[-1]
    m = torch.einsum("bihw,bjhw->bij", q_f, v_f)
    if module.scale:
        m = m / math.sqrt(hw)
    theta = torch.softmax(m, dim=-1)
    return torch.einsum("bij,bjhw->bihw", theta, h_f) + h_f


@pytest.mark.parametrize("scale", [True, False])
def test_channel_attention_matches_einsum(scale: bool) -> None:
    torch.manual_seed(0)
    module = ChannelAttention(6, scale=scale).double()
    f = torch.randn(2, 6, 5, 7, dtype=torch.float64) * 0.3
    torch.testing.assert_close(module(f), einsum_channel_attention(module, f), rtol=1e-10, atol=1e-10)


def test_channel_attention_keeps_channels_last() -> None:
    torch.manual_seed(1)
    module = ChannelAttention(8)
    f = torch.randn(2, 8, 6, 10)
    expected = module(f)
    out = module(f.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def realistic_features(channels: int, height: int, width: int) -> torch.Tensor:
    """BN + ReLU output (unit scale, as everywhere in the network) of a conv on a smooth image."""
    torch.manual_seed(2)
    image = F.interpolate(torch.rand(1, 3, height // 4, width // 4), size=(height, width), mode="bilinear")
    layer = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
    with torch.no_grad():
        return layer(image)


def test_softmax_saturates_without_the_scale_and_not_with_it() -> None:
    f = realistic_features(32, 48, 160)
    stats = {}
    for scale in (False, True):
        module = ChannelAttention(32, scale=scale)
        torch.manual_seed(3)
        nn.init.kaiming_uniform_(module.hqv.weight, a=math.sqrt(5))  # same weights for both
        with torch.no_grad():
            _, q, v = module.hqv(f).chunk(3, dim=1)
            theta = module.attention(q, v)
        torch.testing.assert_close(theta.sum(-1), torch.ones(1, 32))
        entropy = -(theta * theta.clamp_min(1e-30).log()).sum(-1)
        stats[scale] = (theta.max(-1).values, entropy)
    peak, entropy = stats[False]
    assert peak.mean() > 0.98 and entropy.mean() < 0.05  # rows are (nearly) one-hot
    peak, entropy = stats[True]
    assert peak.max() < 0.99 and entropy.mean() > 0.5


def test_global_attention_fuses_both_branches() -> None:
    torch.manual_seed(4)
    module = GlobalAttention(4).eval()
    a, b = torch.randn(2, 4, 6, 8), torch.randn(2, 4, 6, 8)
    out = module(a, b)
    assert out.shape == (2, 4, 6, 8) and (out >= 0).all()
    assert not torch.allclose(module(a, torch.randn(2, 4, 6, 8)), out)
    assert not torch.allclose(module(torch.randn(2, 4, 6, 8), b), out)


def test_structure_attention_keeps_structure_of_high_resolution_features() -> None:
    """Where f_l = α·f'_l + β per channel, SA (λ → 0) returns α·f_h + β whatever the attention map."""
    torch.manual_seed(5)
    module = StructureAttention(3, eps=1e-9)
    high = torch.rand(2, 3, 16, 20)
    alpha, beta = torch.tensor([1.5, -2.0, 0.5]).view(1, 3, 1, 1), torch.tensor([0.2, 0.0, -1.0]).view(1, 3, 1, 1)
    low = alpha * F.avg_pool2d(high, 2) + beta
    out, attention = module(low, high)
    assert attention.shape == (2, 1, 8, 10) and ((attention > 0) & (attention < 1)).all()
    torch.testing.assert_close(out, alpha * high + beta, atol=2e-3, rtol=2e-3)


def test_two_by_two_mean_is_bilinear_half_resolution() -> None:
    x = torch.rand(1, 2, 8, 12)
    torch.testing.assert_close(
        F.avg_pool2d(x, 2), F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
    )


def test_structure_attention_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match=r"\(1, 3, 16, 18\).*\(1, 3, 8, 10\)"):
        StructureAttention(3)(torch.rand(1, 3, 8, 10), torch.rand(1, 3, 16, 18))
