"""The self-supervised model: depth net + pose net + view transforms + losses behind one ``forward(batch)``.

:class:`SelfSupervisedDepth` holds every rule that says what the model *is* rather than how it is
trained: which frames a mode uses (M: ±1, S: the stereo partner, MS: both), whether depth hints
take part (only with the stereo partner), how the sigmoid output becomes depth
(``model.min_depth``/``model.max_depth``), whether the depth is metric (S and MS: ×baseline/0.1)
and the automasking noise of each sample. The trainer runs the loop, the optimiser, AMP, DDP,
checkpoints and logging around it; validation, the demo and the benchmarks use it without a trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from mldanet.config import Config
from mldanet.geometry import depth_to_sigmoid_logit, disp_to_depth, pose_to_matrix
from mldanet.losses import build_loss_weighting, compute_losses
from mldanet.models import build_pose_net, depth_net_from_config
from mldanet.types import STEREO, Batch, FrameId, LossResult


@dataclass
class ModelOutput:
    """disps: scale → B×1×h×w sigmoid disparity (float32); gates: decoder level → the structure
    attention's gates (empty for the baseline); losses: the total and its logged terms."""

    disps: dict[int, Tensor]
    gates: dict[int, Tensor]
    losses: LossResult


def sample_noise_seeds(seed: int, epoch: int, index: Tensor) -> Tensor:
    """Per-sample automasking-noise seeds: independent of batch composition and of the rank."""
    return (seed * 1_000_003 + epoch) * 10_000_019 + index.long()


class SelfSupervisedDepth(nn.Module):
    """MLDA-Net (or the baseline) with its pose network and losses, as ``config`` describes.

    The networks start from ``model.weights_init`` ("pretrained": ImageNet, "scratch", or a
    torchvision state dict) and the heads at ``model.init_depth`` when set (a resumed run's
    checkpoint replaces both). ``autocast_dtype`` (set by the trainer on CUDA)
    runs the networks in bf16/fp16; the losses always run in float32.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        model = config.model
        pretrained = model.weights_init == "pretrained"
        weights_path = None if model.weights_init in ("pretrained", "scratch") else model.weights_init
        self.frame_ids: tuple[FrameId, ...] = config.train.frame_ids
        self.temporal = [f for f in self.frame_ids if f != 0 and f != STEREO]
        self.depth_net = depth_net_from_config(model, pretrained, weights_path)
        if model.init_depth:
            self.depth_net.init_head_bias(depth_to_sigmoid_logit(model.init_depth, model.min_depth, model.max_depth))
        self.pose_net = build_pose_net(pretrained=pretrained, weights_path=weights_path) if self.temporal else None
        self.weighting = build_loss_weighting(config.loss)
        self.autocast_dtype: torch.dtype | None = None
        self.channels_last = config.train.channels_last
        if self.channels_last:
            self.depth_net.to(memory_format=torch.channels_last)
            if self.pose_net is not None:
                self.pose_net.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ the rules
    @property
    def uses_hints(self) -> bool:
        """Depth hints take part when they are on and the stereo partner is a source (they need its warp)."""
        return self.config.uses_hints

    @property
    def metric(self) -> bool:
        """Stereo-trained models (S, MS) know the metric scale; monocular ones (M) do not."""
        return self.config.train.metric

    @property
    def depth_scale(self) -> float:
        """Training units → metres (×baseline/0.1; 5.4 on KITTI) for a metric model, else 1."""
        return self.config.depth_scale

    def to_depth(self, disp: Tensor) -> tuple[Tensor, Tensor]:
        """Sigmoid disparity → (scaled disparity, depth) in training units (:func:`disp_to_depth`)."""
        return disp_to_depth(disp, self.config.model.min_depth, self.config.model.max_depth)

    # ------------------------------------------------------------------ forward
    def _input(self, image: Tensor) -> Tensor:
        return image.contiguous(memory_format=torch.channels_last) if self.channels_last else image

    def transforms(self, batch: Batch) -> dict[FrameId, Tensor]:
        """Source frame id → B×4×4 frame-0 → source transform: the pose net's for ±k, the rig's for "s"."""
        transforms = {}
        for frame in self.temporal:
            # The pose net sees the two frames in temporal order; for a past frame the predicted
            # motion (frame -> 0) is inverted to get 0 -> frame.
            pair = (batch.net_images[frame], batch.net_images[0]) if frame < 0 else (batch.net_images[0], batch.net_images[frame])
            axisangle, translation = self.pose_net(self._input(pair[0]), self._input(pair[1]))
            transforms[frame] = pose_to_matrix(axisangle.float(), translation.float(), invert=frame < 0)
        if STEREO in self.frame_ids:
            transforms[STEREO] = batch.stereo_T
        return transforms

    def forward(self, batch: Batch, noise_seed: Tensor | None = None) -> ModelOutput:
        """Disparities, structure-attention gates and losses of a batch (``noise_seed``: B per-sample
        seeds of the automasking tie noise, see :func:`sample_noise_seeds`)."""
        device_type = batch.images[0].device.type
        with torch.autocast(device_type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            disps, gates = self.depth_net(self._input(batch.net_images[0]), return_attention=True)
            transforms = self.transforms(batch)
        disps = {s: d.float() for s, d in disps.items()}
        loss_batch = batch if self.uses_hints else replace(batch, depth_hint=None, hint_mask=None)
        model = self.config.model
        losses = compute_losses(
            disps, loss_batch, transforms, self.config.loss, self.weighting, noise_seed=noise_seed,
            depth_range=(model.min_depth, model.max_depth),
        )
        return ModelOutput(disps, gates, losses)
