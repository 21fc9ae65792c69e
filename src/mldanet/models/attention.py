"""MLDA-Net's attention modules (DESIGN §2): channel (CA), global (GA) and structure (SA) attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mldanet.models.guided_filter import fast_guided_filter


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv (zero padding, no bias) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ChannelAttention(nn.Module):
    """CA(f) = θ·R(H(f)) + H(f), θ = softmax(R(Q(f))·R(V(f))ᵀ / sqrt(hw)) over the last axis.

    H, Q, V are 3×3 convs c→c without bias (stored as one c→3c conv: the same maps, one call);
    R reshapes c×h×w to c×hw, so θ is c×c. ``scale=False`` drops the 1/sqrt(hw): the paper's
    form, whose softmax saturates to one-hot rows at realistic feature sizes.
    Input and output B×c×h×w; channels-last inputs stay channels-last without copies.
    """

    def __init__(self, channels: int, scale: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.scale = scale
        self.hqv = nn.Conv2d(channels, 3 * channels, 3, padding=1, bias=False)

    def attention(self, query: Tensor, value: Tensor) -> Tensor:
        """θ: B×c×c row-stochastic channel affinity from Q(f), V(f) (each B×c×h×w)."""
        q, v = query.flatten(2), value.flatten(2)
        affinity = torch.bmm(q, v.transpose(1, 2))
        if self.scale:
            affinity = affinity * (1.0 / math.sqrt(q.shape[-1]))
        return affinity.softmax(dim=-1)

    def forward(self, features: Tensor) -> Tensor:
        batch, channels, height, width = features.shape
        hidden, query, value = self.hqv(features).chunk(3, dim=1)
        theta = self.attention(query, value)
        flat = hidden.flatten(2)  # a view in both memory formats
        if features.is_contiguous(memory_format=torch.channels_last):
            # Transposed product: the result is laid out hw×c, i.e. channels-last.
            out = torch.baddbmm(flat.transpose(1, 2), flat.transpose(1, 2), theta.transpose(1, 2)).transpose(1, 2)
        else:
            out = torch.baddbmm(flat, theta, flat)
        return out.view(batch, channels, height, width)


class GlobalAttention(nn.Module):
    """f_G = ConvBNReLU3×3(concat(CA(f_C), CA(f_D))): fuses one MLFE level's two branches. B×c×h×w each."""

    def __init__(self, channels: int, attention_scale: bool = True) -> None:
        super().__init__()
        self.backbone_attention = ChannelAttention(channels, attention_scale)
        self.image_attention = ChannelAttention(channels, attention_scale)
        self.fuse = conv_bn_relu(2 * channels, channels)

    def forward(self, backbone_features: Tensor, image_features: Tensor) -> Tensor:
        return self.fuse(
            torch.cat((self.backbone_attention(backbone_features), self.image_attention(image_features)), dim=1)
        )


class StructureAttention(nn.Module):
    """Attention-weighted fast guided filter that refines upsampled decoder features.

    With f'_l = f_h downsampled ×2 (2×2 mean, which is bilinear ×½ with half-pixel centres), the
    attention T = sigmoid(ψ(ReLU(θ(f'_l) + φ(f_l)))) (1×1 convs, ψ to one channel) weighs each
    low-resolution pixel by T² in the guided filter that fits f_l from f'_l and applies the fit to f_h.
    """

    def __init__(self, channels: int, radius: int = 2, eps: float = 1e-2) -> None:
        super().__init__()
        self.theta = nn.Conv2d(channels, channels, 1)
        self.phi = nn.Conv2d(channels, channels, 1)
        self.psi = nn.Conv2d(channels, 1, 1)
        self.radius = radius
        self.eps = eps

    def forward(self, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
        """low f_l: B×c×h×w, high f_h: B×c×2h×2w → (filtered B×c×2h×2w, attention T B×1×h×w)."""
        if high.shape[-2:] != (2 * low.shape[-2], 2 * low.shape[-1]):
            raise ValueError(f"high-resolution features {tuple(high.shape)} must be twice {tuple(low.shape)}")
        guide = F.avg_pool2d(high, 2)
        attention = torch.sigmoid(self.psi(F.relu(self.theta(guide) + self.phi(low))))
        filtered = fast_guided_filter(guide, low, high, attention * attention, self.radius, self.eps)
        return filtered, attention
