"""MLFE, multi-level feature extraction (docs/METHOD.md §2): a backbone branch f_C and an image branch f_D.

Both give five levels i = 1..5 at H/2^i × W/2^i with the ResNet-18 widths C = (64, 64, 128, 256, 512).
A backbone's wider levels (ResNet-50's) are reduced to C by 1×1 conv + BN + ReLU (a level already
C wide passes unchanged), so everything after the encoder is shared by every backbone.

Backbones are registered once (:func:`register_backbone`): a builder ``(pretrained, weights_path)
→ module`` whose forward returns the five levels and whose ``channels`` says their widths;
``model.backbone`` names one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import ResNet

from mldanet.models.attention import conv_bn_relu
from mldanet.models.weights import load_resnet

LEVEL_CHANNELS = (64, 64, 128, 256, 512)


def _out_channels(layer: nn.Sequential) -> int:
    block = layer[-1]
    return (block.bn3 if hasattr(block, "bn3") else block.bn2).num_features


class ResNetFeatures(nn.Module):
    """A torchvision ResNet without its classifier, returning the five levels (parameter names as torchvision's).

    Level 1 = relu(bn1(conv1(x))) at H/2, level 2 = layer1(maxpool(·)) at H/4, levels 3–5 = layer2..4.
    """

    def __init__(self, resnet: ResNet) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4
        self.channels = (
            resnet.bn1.num_features,
            *(_out_channels(layer) for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)),
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        level1 = self.relu(self.bn1(self.conv1(x)))
        level2 = self.layer1(self.maxpool(level1))
        level3 = self.layer2(level2)
        level4 = self.layer3(level3)
        return [level1, level2, level3, level4, self.layer4(level4)]


BackboneBuilder = Callable[[bool, "str | Path | None"], nn.Module]
BACKBONES: dict[str, BackboneBuilder] = {}


def register_backbone(name: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Decorator: ``builder(pretrained, weights_path)`` → a module mapping B×3×H×W to five feature
    levels (H/2 … H/32) with a ``channels`` tuple of their widths, selected by ``model.backbone=name``."""

    def register(builder: BackboneBuilder) -> BackboneBuilder:
        if name in BACKBONES and BACKBONES[name] is not builder:
            raise ValueError(f"backbone name {name!r} is already registered")
        BACKBONES[name] = builder
        return builder

    return register


def backbone_names() -> list[str]:
    return sorted(BACKBONES)


@register_backbone("resnet18")
def resnet18_features(pretrained: bool, weights_path: str | Path | None) -> ResNetFeatures:
    return ResNetFeatures(load_resnet("resnet18", pretrained, weights_path))


@register_backbone("resnet50")
def resnet50_features(pretrained: bool, weights_path: str | Path | None) -> ResNetFeatures:
    return ResNetFeatures(load_resnet("resnet50", pretrained, weights_path))


class BackboneBranch(nn.Module):
    """f_C: the backbone's features, reduced to ``LEVEL_CHANNELS`` where it is wider. B×3×H×W → 5 levels."""

    def __init__(self, backbone: str, pretrained: bool = False, weights_path: str | Path | None = None) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"model.backbone={backbone!r} is not one of {', '.join(backbone_names())}")
        # named "resnet" whatever the backbone: the parameter names of every checkpoint written so far
        self.resnet = BACKBONES[backbone](pretrained, weights_path)
        self.reduce = nn.ModuleList(
            nn.Identity() if have == want else _reduction(have, want)
            for have, want in zip(self.resnet.channels, LEVEL_CHANNELS)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        return [reduce(level) for reduce, level in zip(self.reduce, self.resnet(x))]


def _reduction(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ImageBranch(nn.Module):
    """f_D: level i = two 3×3 conv+BN+ReLU on the input resized (bilinear) to H/2^i × W/2^i. B×3×H×W → 5 levels.

    Plain bilinear, as the design says: no antialiasing, so it exports to ONNX unchanged.
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.levels = nn.ModuleList(
            nn.Sequential(conv_bn_relu(in_channels, c), conv_bn_relu(c, c)) for c in LEVEL_CHANNELS
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        height, width = x.shape[-2:]
        return [
            level(F.interpolate(x, size=(height >> i, width >> i), mode="bilinear", align_corners=False))
            for i, level in enumerate(self.levels, start=1)
        ]
