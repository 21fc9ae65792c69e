"""Scratch checkpoints for the tests of commands that load one (predict, export, evaluate)."""

from __future__ import annotations

from pathlib import Path

import torch

from mldanet.config import Config
from mldanet.models import build_depth_net
from mldanet.training.checkpoint import save_checkpoint


def write_checkpoint(path: Path, variant: str, height: int = 64, width: int = 96) -> tuple[Path, torch.nn.Module]:
    """A scratch ResNet-18 depth net saved with a stereo-trained (MS) config, and the net (eval mode)."""
    config = Config()
    config.model.variant = variant
    config.model.weights_init = "scratch"
    config.data.height, config.data.width = height, width
    torch.manual_seed(0)
    net = build_depth_net("resnet18", variant, pretrained=False)
    payload = {"config": config.to_dict(), "depth_net": net.state_dict(), "pose_net": None, "step": 0, "epoch": 0}
    return save_checkpoint(payload, path), net.eval()
