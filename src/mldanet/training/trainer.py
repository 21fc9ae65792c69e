"""The training loop: depth + pose networks, self-supervised losses, checkpoints, logging, validation.

Exactness: batch order comes from :class:`EpochBatchSampler` (a function of seed and epoch),
augmentation from the dataset's per-sample generator (seed, epoch, index), automasking noise
from per-sample seeds, and the learning rate is a pure function of the step. A resumed run
therefore replays exactly the batches, augmentations and updates of an uninterrupted one.

Under torchrun (see :mod:`mldanet.training.distributed`) every rank trains on its share of each
global batch with DDP-wrapped networks; since a sample's data and noise depend only on its
index, the union of the ranks' batches is the single-process batch of ``batch_size × world
size`` samples. Rank 0 alone logs, validates and writes checkpoints (of the unwrapped networks,
so they load in a single process).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from mldanet.config import Config, save_config
from mldanet.device import resolve_device
from mldanet.geometry import depth_to_sigmoid_logit, pose_to_matrix
from mldanet.losses import build_loss_weighting, compute_losses
from mldanet.models import build_pose_net, depth_net_from_config
from mldanet.training import distributed
from mldanet.training.checkpoint import (
    checkpoint_config,
    load_checkpoint,
    load_state_dict_checked,
    remove_partial_writes,
    save_checkpoint,
)
from mldanet.training.profiling import StepProfiler
from mldanet.training.sampler import EpochBatchSampler
from mldanet.training.schedule import lr_factor
from mldanet.types import STEREO, Batch, LossResult, collate_samples

# Model fields a resumed run must share with its checkpoint (the others do not change the weights).
ARCHITECTURE_KEYS = ("backbone", "variant", "decoder_attention", "scales")


class NonFiniteLossError(RuntimeError):
    """``train.max_bad_steps`` consecutive non-finite losses; a checkpoint was written first."""


@dataclass
class TrainState:
    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    best_abs_rel: float = math.inf
    bad_steps: int = 0
    skipped_steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
        "python": [int(v) for v in random.getstate()[1]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def sample_noise_seeds(seed: int, epoch: int, index: Tensor) -> Tensor:
    """Per-sample automasking-noise seeds: independent of batch composition and of the rank."""
    return (seed * 1_000_003 + epoch) * 10_000_019 + index.long()


class Trainer:
    """Trains one configuration. ``datasets`` maps "train" / "val" to datasets yielding Samples."""

    def __init__(
        self,
        config: Config,
        train_set: Dataset,
        val_set: Dataset | None = None,
        resume: str | Path | None = None,
        progress: bool = True,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.out = Path(config.train.out)
        self.dist, self.device = distributed.setup(resolve_device(config.train.device))
        self.progress = progress and self.dist.is_main
        self.on_log = on_log
        seed_everything(config.train.seed)

        self.frame_ids = config.train.frame_ids
        self.temporal = [f for f in self.frame_ids if f != 0 and f != STEREO]
        self.use_hints = config.loss.use_hints and STEREO in self.frame_ids

        pretrained = config.model.weights_init == "pretrained"
        weights_path = None if config.model.weights_init in ("pretrained", "scratch") else config.model.weights_init
        self.depth_net = depth_net_from_config(config.model, pretrained, weights_path).to(self.device)
        if config.model.init_depth:
            self.depth_net.init_head_bias(
                depth_to_sigmoid_logit(config.model.init_depth, config.loss.min_depth, config.loss.max_depth)
            )
        self.pose_net = (
            build_pose_net(pretrained=pretrained, weights_path=weights_path).to(self.device) if self.temporal else None
        )
        if config.train.channels_last:
            self.depth_net.to(memory_format=torch.channels_last)
            if self.pose_net is not None:
                self.pose_net.to(memory_format=torch.channels_last)
        if config.train.sync_bn and self.dist.enabled:
            self.depth_net = distributed.convert_batchnorm(self.depth_net, self.device)
            if self.pose_net is not None:
                self.pose_net = distributed.convert_batchnorm(self.pose_net, self.device)
        self.weighting = build_loss_weighting(config.loss).to(self.device)

        groups = [{"params": list(self.depth_net.parameters()), "lr_scale": 1.0, "weight_decay": config.optim.weight_decay}]
        if self.pose_net is not None:
            groups.append(
                {"params": list(self.pose_net.parameters()), "lr_scale": config.optim.pose_lr_scale, "weight_decay": config.optim.weight_decay}
            )
        weighting_params = list(self.weighting.parameters())
        if weighting_params:
            # The learned log-variances must not decay towards 0 (that would pull every weight to 1).
            groups.append({"params": weighting_params, "lr_scale": 1.0, "weight_decay": 0.0})
        self.optimizer = torch.optim.Adam(groups, lr=config.optim.lr)

        amp = config.train.amp if self.device.type == "cuda" else "none"
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")

        self.train_set = train_set
        self.val_set = val_set
        self.sampler = EpochBatchSampler(
            len(train_set), config.optim.batch_size, seed=config.train.seed, rank=self.dist.rank, world_size=self.dist.world_size
        )
        self.steps_per_epoch = len(self.sampler)
        self.total_steps = self.steps_per_epoch * config.optim.epochs
        if config.optim.max_steps:
            self.total_steps = min(self.total_steps, config.optim.max_steps)
        self.state = TrainState()
        if resume is not None:
            self._load(resume)
        # The networks the training steps run: DDP wrappers under torchrun. Validation, logging and
        # checkpoints use the plain modules (a rank-0-only forward through DDP would wait for the others).
        self.train_nets: tuple[nn.Module, nn.Module | None] = (self.depth_net, self.pose_net)
        if self.dist.enabled:
            self._check_ranks_start_alike()
            self.train_nets = (
                distributed.wrap(self.depth_net, self.device),
                distributed.wrap(self.pose_net, self.device) if self.pose_net is not None else None,
            )
        self._writer = None

    # ----------------------------------------------------------------------------- checkpoints
    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "depth_net": self.depth_net.state_dict(),
            "pose_net": self.pose_net.state_dict() if self.pose_net is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"kind": self.config.optim.schedule, "step": self.state.step},
            "loss_weighting": self.weighting.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.state.epoch,
            "step": self.state.step,
            "batch_in_epoch": self.state.batch_in_epoch,
            "best_abs_rel": self.state.best_abs_rel,
            "bad_steps": self.state.bad_steps,
            "skipped_steps": self.state.skipped_steps,
            "history": self.state.history,
            "world_size": self.dist.world_size,
            "rng": rng_state(),
        }

    def save(self, name: str = "last.pt") -> Path:
        """Write the checkpoint (rank 0 only; other ranks just return its path)."""
        path = self.out / "checkpoints" / name
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_payload(), path)
            save_config(self.config, self.out / "checkpoints" / "config.yaml")
        return path

    def _load(self, resume: str | Path) -> None:
        payload = load_checkpoint(resume, map_location=self.device)
        source = Path(resume)
        self._check_resumable(payload, source)
        load_state_dict_checked(self.depth_net, payload["depth_net"], source, "depth")
        if self.pose_net is not None:
            if payload.get("pose_net") is None:
                raise ValueError(f"checkpoint {source} has no pose network, but mode {self.config.train.mode} needs one")
            load_state_dict_checked(self.pose_net, payload["pose_net"], source, "pose")
        load_state_dict_checked(self.weighting, payload["loss_weighting"], source, "loss-weighting")
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scaler.load_state_dict(payload["scaler"])
        self.state = TrainState(
            epoch=payload["epoch"],
            step=payload["step"],
            batch_in_epoch=payload["batch_in_epoch"],
            best_abs_rel=payload["best_abs_rel"],
            bad_steps=payload.get("bad_steps", 0),
            skipped_steps=payload.get("skipped_steps", 0),
            history=list(payload.get("history", [])),
        )
        set_rng_state(payload["rng"])

    def _check_resumable(self, payload: dict[str, Any], source: Path) -> None:
        """Refuse, naming the checkpoint, what would load wrong weights or break the exact batch order."""
        trained = checkpoint_config(payload).to_dict()["model"]
        wanted = self.config.to_dict()["model"]
        changed = [f"{key} {trained[key]!r} -> {wanted[key]!r}" for key in ARCHITECTURE_KEYS if trained[key] != wanted[key]]
        if changed:
            raise ValueError(
                f"checkpoint {source} was trained with another network ({', '.join(changed)}): "
                "resume without changing the model, or start a new run"
            )
        world_size = payload.get("world_size", 1)
        if world_size != self.dist.world_size:
            raise ValueError(
                f"checkpoint {source} was written by a run of {world_size} processes, this one has "
                f"{self.dist.world_size}: the batch order (and so an exact resume) depends on it; "
                f"resume with {world_size} processes (torchrun --nproc_per_node/--nnodes)"
            )

    def _check_ranks_start_alike(self) -> None:
        steps = distributed.gather_ints(self.state.step, self.device)
        if len(set(steps)) > 1:
            raise ValueError(
                f"the ranks start at different steps {steps}: every node must see the same "
                f"{self.out / 'checkpoints' / 'last.pt'} (put --out on a shared filesystem)"
            )

    # ----------------------------------------------------------------------------- one step
    def _to_input(self, image: Tensor) -> Tensor:
        return image.contiguous(memory_format=torch.channels_last) if self.config.train.channels_last else image

    def compute_transforms(self, batch: Batch, pose_net: nn.Module | None = None) -> dict:
        pose_net = self.pose_net if pose_net is None else pose_net
        transforms = {}
        for frame in self.temporal:
            # The pose net sees the two frames in temporal order; for a past frame the predicted
            # motion (frame -> 0) is inverted to get 0 -> frame.
            pair = (batch.net_images[frame], batch.net_images[0]) if frame < 0 else (batch.net_images[0], batch.net_images[frame])
            axisangle, translation = pose_net(self._to_input(pair[0]), self._to_input(pair[1]))
            transforms[frame] = pose_to_matrix(axisangle.float(), translation.float(), invert=frame < 0)
        if STEREO in self.frame_ids:
            transforms[STEREO] = batch.stereo_T
        return transforms

    def forward_losses(
        self, batch: Batch, epoch: int, nets: tuple[nn.Module, nn.Module | None] | None = None
    ) -> tuple[dict[int, Tensor], LossResult]:
        """Disparities and losses; ``nets`` (depth, pose) replace the plain networks (the DDP wrappers)."""
        depth_net, pose_net = nets or (self.depth_net, self.pose_net)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            disps = depth_net(self._to_input(batch.net_images[0]))
            transforms = self.compute_transforms(batch, pose_net)
        disps = {s: d.float() for s, d in disps.items()}
        loss_batch = batch if self.use_hints else _without_hints(batch)
        result = compute_losses(
            disps,
            loss_batch,
            transforms,
            self.config.loss,
            self.weighting,
            noise_seed=sample_noise_seeds(self.config.train.seed, epoch, batch.index),
        )
        return disps, result

    def _set_lr(self) -> float:
        factor = lr_factor(self.state.step, self.steps_per_epoch, self.total_steps, self.config.optim)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.optim.lr * factor * group["lr_scale"]
        return self.config.optim.lr * factor

    def train_step(self, batch: Batch, epoch: int) -> tuple[dict[int, Tensor], LossResult, bool]:
        self.depth_net.train()
        if self.pose_net is not None:
            self.pose_net.train()
        lr = self._set_lr()
        statistics = [b.clone() for b in self._buffers()]
        disps, result = self.forward_losses(batch, epoch, self.train_nets)
        result.terms["lr"] = torch.tensor(lr)
        finite = bool(torch.isfinite(result.total))
        if self.dist.enabled:
            # All ranks skip together: one that skipped backward would leave the others waiting in
            # DDP's gradient all-reduce.
            finite = distributed.all_ranks_agree(finite, self.device)
        if not finite:
            # The forward pass already moved the batch-norm running statistics (to NaN, when the
            # activations were): restored, a skipped step leaves the networks as they were.
            for buffer, saved in zip(self._buffers(), statistics, strict=True):
                buffer.copy_(saved)
            self.optimizer.zero_grad(set_to_none=True)
            return disps, result, False
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(result.total).backward()
        if self.dist.enabled:
            distributed.average_gradients(self.weighting.parameters())
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return disps, result, True

    def _buffers(self) -> list[Tensor]:
        nets = [self.depth_net] if self.pose_net is None else [self.depth_net, self.pose_net]
        return [buffer for net in nets for buffer in net.buffers()]

    # ----------------------------------------------------------------------------- loop
    def _loader(self, dataset: Dataset, sampler) -> DataLoader:
        workers = self.config.data.num_workers
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=workers,
            collate_fn=collate_samples,
            pin_memory=self.device.type == "cuda",
            # Workers are re-created each epoch so they pick up dataset.set_epoch().
            persistent_workers=False,
        )

    def train(self, stop_at_step: int | None = None) -> TrainState:
        """Train to the configured end, or stop (with a checkpoint) after ``stop_at_step`` steps."""
        self.stop_at = min(self.total_steps, stop_at_step or self.total_steps)
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.out / "config.yaml")
            remove_partial_writes(self.out / "checkpoints")
        profiler = StepProfiler(self.out, self.config.train.profile_steps if self.dist.is_main else 0)
        bar = tqdm(
            total=self.total_steps,
            initial=self.state.step,
            desc="train",
            unit="step",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        try:
            while self.state.step < self.stop_at and self.state.epoch < self.config.optim.epochs:
                self._run_epoch(bar, profiler)
            # The ranks finish together, after rank 0's last validation and checkpoint.
            distributed.barrier()
        finally:
            profiler.close()
            bar.close()
            if self._writer is not None:
                self._writer.close()
        return self.state

    def _run_epoch(self, bar: tqdm, profiler: StepProfiler) -> None:
        epoch = self.state.epoch
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        self.sampler.set_epoch(epoch, start_batch=self.state.batch_in_epoch)
        cfg = self.config.train
        tick = time.perf_counter()
        for batch in self._loader(self.train_set, self.sampler):
            batch = batch.to(self.device, non_blocking=True)
            disps, result, ok = self.train_step(batch, epoch)
            profiler.step()
            self.state.step += 1
            self.state.batch_in_epoch += 1
            if ok:
                self.state.bad_steps = 0
            else:
                self.state.bad_steps += 1
                self.state.skipped_steps += 1
                if self.dist.is_main:
                    tqdm.write(
                        f"step {self.state.step}: non-finite loss ({result.total.item()}), update skipped "
                        f"({self.state.skipped_steps} skipped so far)"
                    )
                if self.state.bad_steps >= cfg.max_bad_steps:
                    path = self.save()
                    raise NonFiniteLossError(
                        f"{self.state.bad_steps} consecutive non-finite losses at step {self.state.step} "
                        f"({self.state.skipped_steps} skipped in all); checkpoint saved to {path}. Lower the "
                        "learning rate or check the data (hints, images) of the last batches."
                    )
            now = time.perf_counter()
            rate = batch.size / max(now - tick, 1e-9)
            tick = now
            bar.update(1)
            bar.set_postfix(loss=f"{result.total.item():.4f}", ex_s=f"{rate:.1f}", epoch=epoch, skipped=self.state.skipped_steps)
            is_main = self.dist.is_main
            if is_main and (self.state.step % cfg.log_every == 0 or self.state.step == self.total_steps):
                self._log_scalars(result)
            if is_main and cfg.image_every and self.state.step % cfg.image_every == 0:
                self._log_images(batch, disps)
            if cfg.checkpoint_every and self.state.step % cfg.checkpoint_every == 0:
                self.save()
            if self.state.step >= self.stop_at:
                break
        epoch_done = self.state.batch_in_epoch >= self.steps_per_epoch
        if epoch_done:
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
        if epoch_done or self.state.step >= self.total_steps:
            if cfg.validate and self.val_set is not None and self.dist.is_main:
                self.validate()
        if epoch_done or self.state.step >= self.stop_at:
            self.save()

    # ----------------------------------------------------------------------------- logging
    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.out / "tensorboard"))
        return self._writer

    def _log_scalars(self, result: LossResult) -> None:
        values = {"loss/total": float(result.total.detach()), "train/skipped_steps": float(self.state.skipped_steps)}
        values.update({f"loss/{k}" if not k.startswith(("weight/", "log_var/", "lr")) else k: float(v) for k, v in result.terms.items()})
        for name, value in values.items():
            self.writer.add_scalar(name, value, self.state.step)
        self.state.history.append({"step": float(self.state.step), **values})
        if self.on_log is not None:
            self.on_log(self.state.step, values)

    def _log_images(self, batch: Batch, disps: dict[int, Tensor]) -> None:
        from mldanet.visualize import colorize_depth

        step = self.state.step
        self.writer.add_image("input/0", batch.images[0][0].clamp(0, 1), step)
        disp = disps[0][0, 0].detach().float().cpu().numpy()
        self.writer.add_image("disparity/0", colorize_depth(disp, vmax=float(np.percentile(disp, 95))), step, dataformats="HWC")
        if batch.depth_hint is not None:
            hint = batch.depth_hint[0, 0].cpu().numpy()
            hint_disp = np.where(hint > 0, 1.0 / np.maximum(hint, 1e-6), 0.0)
            self.writer.add_image("hint/0", colorize_depth(hint_disp), step, dataformats="HWC")

    # ----------------------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        from mldanet.evaluation.protocol import evaluate_disparities
        from mldanet.geometry import disp_to_depth

        self.depth_net.eval()
        if self.pose_net is not None:
            self.pose_net.eval()
        cfg = self.config
        sampler = EpochBatchSampler(len(self.val_set), min(cfg.optim.batch_size, len(self.val_set)), seed=0, shuffle=False)
        losses, pred_disps, gts = [], [], []
        for i, batch in enumerate(self._loader(self.val_set, sampler)):
            if cfg.train.max_val_batches and i >= cfg.train.max_val_batches:
                break
            batch = batch.to(self.device)
            disps, result = self.forward_losses(batch, epoch=0)
            losses.append(float(result.terms.get("reprojection", result.total)))
            if batch.depth_gt is not None:
                scaled, _ = disp_to_depth(disps[0], cfg.loss.min_depth, cfg.loss.max_depth)
                pred_disps.extend(scaled[:, 0].float().cpu().numpy())
                gts.extend(batch.depth_gt[:, 0].cpu().numpy())
        metrics = {"val/reprojection": float(np.mean(losses))}
        if gts:
            scaling = "median" if cfg.train.mode == "M" else "stereo"
            evaluation = evaluate_disparities(pred_disps, gts, scaling=scaling)
            metrics.update({f"val/{k}": float(v) for k, v in evaluation.metrics.items()})
            if evaluation.metrics["abs_rel"] < self.state.best_abs_rel:
                self.state.best_abs_rel = float(evaluation.metrics["abs_rel"])
                self.save("best.pt")
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, self.state.step)
        self.state.history.append({"step": float(self.state.step), **metrics})
        tqdm.write("validation: " + ", ".join(f"{k[4:]} {v:.4f}" for k, v in metrics.items()))
        return metrics


def _without_hints(batch: Batch) -> Batch:
    from dataclasses import replace

    return replace(batch, depth_hint=None, hint_mask=None)
