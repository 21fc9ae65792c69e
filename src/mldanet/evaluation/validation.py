"""Validation during training: the held-out split's reprojection error and, with ground truth, the 7 metrics.

The trainer calls a :class:`Validator` with the model after each epoch (rank 0); it knows nothing
of how the scores are made, and this module nothing of the training loop.
"""

from __future__ import annotations

import numpy as np
import torch

from mldanet.data.base import FrameDataset
from mldanet.data.loader import batch_loader
from mldanet.evaluation.protocol import evaluate_disparities
from mldanet.self_supervised import SelfSupervisedDepth, sample_noise_seeds
from mldanet.data.sampler import EpochBatchSampler


class Validator:
    """``validator(model)`` → ``{"val/reprojection": …, "val/abs_rel": …, …}`` on ``dataset``.

    batch_size: samples per batch (an incomplete last batch is left out, as in training);
    max_batches: 0 for the whole split. The metrics follow the model's rules (median scaling for
    M, ×baseline/0.1 for S/MS) and the dataset's protocol (KITTI's Eigen crop); without ground
    truth in the dataset only the reprojection error is reported.
    """

    def __init__(self, dataset: FrameDataset, batch_size: int, max_batches: int = 0, num_workers: int = 0) -> None:
        self.dataset = dataset
        self.batch_size = min(batch_size, len(dataset))
        self.max_batches = max_batches
        self.num_workers = num_workers

    @torch.no_grad()
    def __call__(self, model: SelfSupervisedDepth) -> dict[str, float]:
        model.eval()
        device = next(model.parameters()).device
        sampler = EpochBatchSampler(len(self.dataset), self.batch_size, seed=0, shuffle=False)
        seed = model.config.train.seed
        losses, pred_disps, gts = [], [], []
        for i, batch in enumerate(batch_loader(self.dataset, sampler, self.num_workers, device)):
            if self.max_batches and i >= self.max_batches:
                break
            batch = batch.to(device)
            output = model(batch, sample_noise_seeds(seed, 0, batch.index))
            result = output.losses
            losses.append(float(result.terms.get("reprojection", result.total)))
            if batch.depth_gt is not None:
                scaled, _ = model.to_depth(output.disps[0])
                pred_disps.extend(scaled[:, 0].float().cpu().numpy())
                gts.extend(batch.depth_gt[:, 0].cpu().numpy())
        metrics = {"val/reprojection": float(np.mean(losses))}
        if gts:
            evaluation = evaluate_disparities(
                pred_disps, gts, scaling="stereo" if model.metric else "median", eigen_crop=self.dataset.eigen_crop,
                stereo_factor=model.depth_scale,
            )
            metrics.update({f"val/{k}": float(v) for k, v in evaluation.metrics.items()})
        return metrics
