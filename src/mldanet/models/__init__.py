"""The networks: ``build_depth_net`` (MLDA-Net or the monodepth2-style baseline) and ``build_pose_net``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from mldanet.config import ModelConfig
from mldanet.models.depth_net import DepthNet
from mldanet.models.pose_net import PoseNet

__all__ = ["DepthNet", "PoseNet", "build_depth_net", "build_pose_net", "depth_net_from_config"]


def build_depth_net(
    backbone: str = "resnet18", variant: str = "mlda", pretrained: bool = False, weights_path: str | Path | None = None,
    **options: Any,
) -> DepthNet:
    """The depth network of ``ModelConfig(backbone=..., variant=..., **options)`` (timm's ``create_model``
    habit); ``forward(image)`` maps B×3×H×W in [0, 1] to {scale: B×1×H/2^s×W/2^s disparity}.

    ``options`` are :class:`~mldanet.config.ModelConfig` fields (``scales``, ``structure_attention``,
    ``multi_level``, ...); an unknown one is a ``TypeError`` naming it. ``pretrained``: ImageNet
    weights through torchvision (a clear error offline); ``weights_path``: a local torchvision state
    dict (wins over ``pretrained``).
    """
    return DepthNet(replace(ModelConfig(), backbone=backbone, variant=variant, **options), pretrained, weights_path)


def build_pose_net(pretrained: bool = False, weights_path: str | Path | None = None) -> PoseNet:
    """The pose network; ``forward(first, second)`` → (axis-angle B×3, translation B×3)."""
    return PoseNet(pretrained, weights_path)


def depth_net_from_config(model: ModelConfig, pretrained: bool = False, weights_path: str | Path | None = None) -> DepthNet:
    """The depth network a ``ModelConfig`` describes (the trainer and checkpoint loading share this)."""
    return DepthNet(model, pretrained, weights_path)
