"""DepthNet: MLFE encoder + global attention + decoder with structure attention (docs/METHOD.md §1–§5)."""

from __future__ import annotations

import typing
from pathlib import Path

import torch
from torch import Tensor, nn

from mldanet.config import ModelConfig, Variant
from mldanet.models.attention import GlobalAttention
from mldanet.models.decoder import Decoder
from mldanet.models.encoder import LEVEL_CHANNELS, BackboneBranch, ImageBranch
from mldanet.models.small_map_conv import small_maps_as_matmul

VARIANTS = typing.get_args(Variant)
IMAGE_MEAN, IMAGE_STD = 0.45, 0.225


def normalise(image: Tensor) -> Tensor:
    """[0, 1] colour → the networks' input scale (monodepth2's constants, also with ImageNet weights)."""
    return (image - IMAGE_MEAN) / IMAGE_STD


class DepthNet(nn.Module):
    """B×3×H×W image in [0, 1] (H, W multiples of 32) → {scale s: B×1×H/2^s×W/2^s disparity in (0, 1)}.

    ``model.variant="mlda"``: both MLFE branches fused by global attention per level, decoder with
    channel attention (unless ``decoder_attention`` is false) and structure attention of the form
    ``structure_attention`` ("residual" | "guided" | "seed", see :class:`StructureAttention`; "none": off),
    the image branch and its global attention unless ``multi_level`` is false, and decoder blocks
    normalised by ``decoder_norm`` ("group" | "none", see :class:`ConvBlock`).
    ``variant="baseline"``: image branch, GA, decoder CA, SA and norm all off, which is monodepth2's
    ResNet + U-Net (``decoder_attention`` and ``decoder_norm`` are then ignored).
    ``pretrained``: ImageNet weights through torchvision; ``weights_path``: a local torchvision state
    dict (wins over ``pretrained``).
    """

    def __init__(self, model: ModelConfig | None = None, pretrained: bool = False, weights_path: str | Path | None = None) -> None:
        super().__init__()
        model = ModelConfig() if model is None else model
        if model.variant not in VARIANTS:
            raise ValueError(f"variant={model.variant!r} is not one of {', '.join(VARIANTS)}")
        self.backbone = model.backbone
        self.variant = model.variant
        self.encoder = BackboneBranch(model.backbone, pretrained, weights_path)
        mlda = model.variant == "mlda"
        multi_level = mlda and model.multi_level
        self.image_branch = ImageBranch() if multi_level else None
        self.global_attention = (
            nn.ModuleList(GlobalAttention(c, model.attention_affinity) for c in LEVEL_CHANNELS) if multi_level else None
        )
        self.decoder = Decoder(
            LEVEL_CHANNELS,
            scales=tuple(model.scales),
            channel_attention=mlda and model.decoder_attention,
            structure_attention=mlda and model.structure_attention != "none",
            attention_affinity=model.attention_affinity,
            structure_form=model.structure_attention,
            norm=model.decoder_norm if mlda else "none",
        )
        self.scales = self.decoder.scales
        small_maps_as_matmul(self)

    def forward(
        self, image: Tensor, return_attention: bool = False
    ) -> dict[int, Tensor] | tuple[dict[int, Tensor], dict[int, Tensor]]:
        """→ disparities; with ``return_attention`` also the structure-attention gates T by decoder
        level k (B×1×H/2^(k+1)×W/2^(k+1), empty for the baseline), which the trainer's collapse
        monitor watches. A keyword of ``forward`` (not a second method) so that DDP wrappers pass it."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"depth network input must be B×3×H×W, got shape {tuple(image.shape)}")
        height, width = image.shape[-2:]
        if height % 32 or width % 32 or height == 0 or width == 0:
            raise ValueError(f"input size {height}×{width} (H×W) must be multiples of 32")
        x = normalise(image)
        features = self.encoder(x)
        if self.image_branch is not None and self.global_attention is not None:
            features = [ga(c, d) for ga, c, d in zip(self.global_attention, features, self.image_branch(x))]
        disparities, gates = self.decoder(features)
        return (disparities, gates) if return_attention else disparities

    @torch.no_grad()
    def init_head_bias(self, logit: float) -> None:
        """Start every disparity head at sigmoid(logit) (biases only; the weights stay random).

        From scratch the heads start at sigmoid(0) = 0.5, about 0.2 training units (1 m) under
        the default depth range, an order of magnitude nearer than a street; at a low learning
        rate a short run spends many of its steps walking out there (``model.init_depth``).
        """
        for head in self.decoder.heads.values():
            head.bias.fill_(logit)
