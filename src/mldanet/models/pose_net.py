"""PoseNet (docs/METHOD.md §6.1): a separate ResNet-18 on two stacked frames and monodepth2's pose decoder."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from mldanet.models.depth_net import normalise
from mldanet.models.encoder import ResNetFeatures
from mldanet.models.small_map_conv import small_maps_as_matmul
from mldanet.models.weights import load_resnet

OUTPUT_SCALE = 0.01  # keeps the initial poses near identity, so early warps stay near the frames


class PoseNet(nn.Module):
    """(first, second) B×3×H×W frames in [0, 1], in temporal order → (axis-angle B×3, translation B×3).

    The transform takes points from the first frame's camera to the second's; callers invert it
    for negative frame ids. With ImageNet (or file) weights, the 3-channel conv1 kernel is
    duplicated over the 6 input channels and halved, so the pair (x, x) gives the features of x.
    """

    def __init__(self, pretrained: bool = False, weights_path: str | Path | None = None) -> None:
        super().__init__()
        resnet = load_resnet("resnet18", pretrained, weights_path)
        rgb_conv = resnet.conv1
        resnet.conv1 = nn.Conv2d(6, rgb_conv.out_channels, 7, stride=2, padding=3, bias=False)
        if pretrained or weights_path is not None:
            with torch.no_grad():
                resnet.conv1.weight.copy_(torch.cat((rgb_conv.weight, rgb_conv.weight), dim=1) / 2)
        self.encoder = ResNetFeatures(resnet)
        width = self.encoder.channels[-1]
        self.squeeze = nn.Conv2d(width, 256, 1)
        self.pose = nn.Sequential(
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 6, 1),
        )
        small_maps_as_matmul(self)

    def forward(self, first: Tensor, second: Tensor) -> tuple[Tensor, Tensor]:
        if first.shape != second.shape or first.dim() != 4 or first.shape[1] != 3:
            raise ValueError(
                f"pose network frames must both be B×3×H×W, got {tuple(first.shape)} and {tuple(second.shape)}"
            )
        features = self.encoder(normalise(torch.cat((first, second), dim=1)))[-1]
        pose = self.pose(torch.relu(self.squeeze(features))).mean(dim=(2, 3)) * OUTPUT_SCALE
        return pose[:, :3], pose[:, 3:]
