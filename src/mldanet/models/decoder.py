"""Decoder with structure attention (SA) and the multi-scale depth heads (DP), docs/METHOD.md §5.

From x = the deepest feature level, for k = 4..0:
    f_l = ConvBlock(x) → D_k                        (at H/2^(k+1))
    u   = nearest ×2 of f_l, concatenated with skip level k when k > 0; CA(u) when enabled
    f_h = ConvBlock(u) → D_k                        (at H/2^k)
    x   = SA(f_l, f_h) when enabled (by default the guided filter's output replaces f_h), else f_h
    disp_k = sigmoid(Conv3×3(x)) for k in scales
ConvBlock normalises with GroupNorm when ``norm="group"`` (MLDA-Net's default, see ConvBlock).
With CA and SA off and ``norm="none"`` this is monodepth2's U-Net depth decoder.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mldanet.config import DecoderNorm
from mldanet.models.attention import ChannelAttention, StructureAttention
from mldanet.models.small_map_conv import SmallMapConv2d

DECODER_CHANNELS = (16, 32, 64, 128, 256)


def reflect_pad(x: Tensor) -> Tensor:
    """1-pixel reflection padding; replication where a side is 1 pixel long (H = 32 at level 5),
    which reflection cannot pad and where both mean "repeat the only pixel"."""
    return F.pad(x, (1, 1, 1, 1), mode="reflect" if min(x.shape[-2:]) > 1 else "replicate")


class ReflectConv3x3(SmallMapConv2d):
    """3×3 convolution over a reflection-padded input (size preserving)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(reflect_pad(x))


DECODER_NORMS = typing.get_args(DecoderNorm)
# Channels per group of the decoder's GroupNorm: widths 16..256 give 1..16 groups.
GROUP_WIDTH = 16


class ConvBlock(nn.Sequential):
    """Reflection-padded 3×3 conv (+ GroupNorm with ``norm="group"``) + ELU; ``norm="none"`` is
    monodepth2's ConvBlock.

    Why the norm: without it nothing bounds the decoder's activations. Adam moves every weight by
    about the learning rate whatever its gradient, so one step whose gradient pushes a conv's
    weights the same way can multiply its output; in a collapsed demo run (lr 5e-4) one step took
    the decoder's largest activations from 8-10 to 78-288 and every head's logits from [-6, -2] to
    [26, 89]: sigmoid exactly 1, no gradient, and Adam's momentum kept growing them. Normalised,
    a block's output scale does not depend on its weights' scale, so no step can do that.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "none") -> None:
        if norm not in DECODER_NORMS:
            raise ValueError(f"decoder norm {norm!r} is not one of {', '.join(DECODER_NORMS)}")
        layers: list[nn.Module] = [ReflectConv3x3(in_channels, out_channels)]
        if norm == "group":
            layers.append(nn.GroupNorm(max(1, out_channels // GROUP_WIDTH), out_channels))
        super().__init__(*layers, nn.ELU(inplace=True))


class Decoder(nn.Module):
    """Five encoder levels (B×C_i×H/2^i×W/2^i, i = 1..5) → {scale k: B×1×H/2^k×W/2^k disparity in (0, 1)}."""

    def __init__(
        self,
        skip_channels: Sequence[int],
        scales: Sequence[int] = (0, 1, 2, 3),
        channel_attention: bool = True,
        structure_attention: bool = True,
        attention_affinity: str = "cosine",
        widths: Sequence[int] = DECODER_CHANNELS,
        structure_form: str = "guided",
        norm: str = "none",
    ) -> None:
        super().__init__()
        if len(skip_channels) != 5 or len(widths) != 5:
            raise ValueError(f"decoder needs 5 levels, got skip channels {skip_channels} and widths {widths}")
        if not scales or any(s not in range(5) for s in scales):
            raise ValueError(f"scales={tuple(scales)} must be a non-empty subset of 0..4")
        self.scales = tuple(sorted(set(scales)))
        # Levels below the finest requested scale would produce nothing: they are not built.
        # Modules are keyed by level k (as strings, which ModuleDict requires).
        levels = range(self.scales[0], 5)
        self.reduce = nn.ModuleDict(
            {str(k): ConvBlock(skip_channels[4] if k == 4 else widths[k + 1], widths[k], norm) for k in levels}
        )
        self.fuse = nn.ModuleDict(
            {str(k): ConvBlock(widths[k] + (skip_channels[k - 1] if k > 0 else 0), widths[k], norm) for k in levels}
        )
        # Level 0 has no skip connection, hence no CA.
        self.channel_attention = (
            nn.ModuleDict(
                {str(k): ChannelAttention(widths[k] + skip_channels[k - 1], attention_affinity) for k in levels if k > 0}
            )
            if channel_attention
            else None
        )
        self.structure_attention = (
            nn.ModuleDict({str(k): StructureAttention(widths[k], form=structure_form) for k in levels}) if structure_attention else None
        )
        self.heads = nn.ModuleDict({str(s): ReflectConv3x3(widths[s], 1) for s in self.scales})

    def forward(self, features: Sequence[Tensor]) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
        """→ (disparities by scale, SA gates T by level k at H/2^(k+1); empty without SA)."""
        disparities: dict[int, Tensor] = {}
        attention_maps: dict[int, Tensor] = {}
        x = features[4]
        for k in range(4, self.scales[0] - 1, -1):
            low = self.reduce[str(k)](x)
            up = F.interpolate(low, scale_factor=2.0, mode="nearest")
            if k > 0:
                up = torch.cat((up, features[k - 1]), dim=1)
                if self.channel_attention is not None:
                    up = self.channel_attention[str(k)](up)
            x = self.fuse[str(k)](up)
            if self.structure_attention is not None:
                x, attention_maps[k] = self.structure_attention[str(k)](low, x)
            if k in self.scales:
                disparities[k] = torch.sigmoid(self.heads[str(k)](x))
        return dict(sorted(disparities.items())), attention_maps
