"""The networks: ``build_depth_net`` (MLDA-Net or the monodepth2-style baseline) and ``build_pose_net``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mldanet.models.depth_net import DepthNet
from mldanet.models.pose_net import PoseNet

__all__ = ["DepthNet", "PoseNet", "build_depth_net", "build_pose_net", "depth_net_from_config"]


def build_depth_net(
    backbone: str = "resnet18",
    variant: str = "mlda",
    pretrained: bool = False,
    scales: Sequence[int] = (0, 1, 2, 3),
    decoder_attention: bool = True,
    attention_affinity: str = "cosine",
    weights_path: str | Path | None = None,
    structure_attention: str = "residual",
    decoder_norm: str = "group",
    multi_level: bool = True,
) -> DepthNet:
    """The depth network; ``forward(image)`` maps B×3×H×W in [0, 1] to {scale: B×1×H/2^s×W/2^s disparity}.

    backbone: "resnet18" | "resnet50"; variant: "mlda" | "baseline"; pretrained: ImageNet weights
    through torchvision (a clear error offline); weights_path: a local torchvision state dict
    (wins over ``pretrained``); decoder_attention: channel attention in the decoder;
    attention_affinity: the channel attention's affinity, "cosine" | "scaled" | "raw"
    (``ChannelAttention``); structure_attention: the structure attention's form,
    "residual" | "guided" | "seed" (``StructureAttention``); decoder_norm: "group" | "none", the
    MLDA-Net decoder blocks' normalisation (``ConvBlock``; the baseline has none); structure_attention
    "none" turns SA off; multi_level=False drops the image branch and its global attention (the
    ablation's rows, benchmarks/ablation_components.py).
    """
    return DepthNet(
        backbone, variant, pretrained, scales, decoder_attention, attention_affinity, weights_path, structure_attention,
        decoder_norm, multi_level,
    )


def build_pose_net(pretrained: bool = False, weights_path: str | Path | None = None) -> PoseNet:
    """The pose network; ``forward(first, second)`` → (axis-angle B×3, translation B×3)."""
    return PoseNet(pretrained, weights_path)


def depth_net_from_config(model, pretrained: bool = False, weights_path: str | Path | None = None) -> DepthNet:
    """The depth network a ``ModelConfig`` describes (the trainer and checkpoint loading share this)."""
    return build_depth_net(
        backbone=model.backbone,
        variant=model.variant,
        pretrained=pretrained,
        scales=tuple(model.scales),
        decoder_attention=model.decoder_attention,
        attention_affinity=model.attention_affinity,
        weights_path=weights_path,
        structure_attention=model.structure_attention,
        decoder_norm=model.decoder_norm,
        multi_level=model.multi_level,
    )
