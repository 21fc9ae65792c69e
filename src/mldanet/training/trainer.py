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

Guards. Every step clips the global gradient norm of the depth and pose networks to
``optim.clip_grad_norm`` (after fp16 unscaling; the learned loss weights, a few scalars with a
meaning of their own, are left alone) and logs the norm before clipping as ``train/grad_norm``.
A step whose loss or gradient norm is not finite is skipped (under fp16 a non-finite gradient is
the GradScaler's to skip, as part of its scale search). The collapse monitor
(:mod:`mldanet.training.collapse`) reads each step's finest disparity and the structure-attention
gates of the same forward pass; the progress bar shows ``flat=N`` while the map is flat, and a
collapse is reported once (or stops the run with :class:`CollapseError` under
``train.stop_on_collapse``). Under torchrun the map counts as flat when it is flat on every rank,
so that all ranks count alike. The monitor's streak is in the checkpoint: a resumed run goes on
counting.

The healthy checkpoint. A step runs with the weights of the last update, so the step after a
checkpoint is written tells whether that checkpoint's map is healthy (not flat). Before
``checkpoints/last.pt`` is replaced, it is kept as ``checkpoints/healthy.pt`` (a hard link, no
copy) if it is the newest checkpoint known healthy; ``healthy.pt`` is removed as soon as a newer
``last.pt`` is seen healthy. So ``healthy.pt`` exists only while ``last.pt`` is not known healthy
(for one step after each write, and while the map is flat), a healthy run takes no more disk than
the old checkpoint plus the one being written, and a flat one takes one checkpoint more.
``healthy_checkpoint`` holds the (path, step) that collapse messages name. Two exceptions to
"seen healthy": the final checkpoint of a run has no step after it, and a run that ends with a
healthy map counts it healthy; a resumed run knows the checkpoint it resumed from (judged by its
first step) and a ``healthy.pt`` it finds in the run folder. ``healthy.pt`` is the full
checkpoint (a link to an older ``last.pt``), not a weights-only one like ``best.pt``: the
collapse message tells the user to ``--resume`` from it.

Stopping. SIGINT (Ctrl-C) and SIGTERM do not kill a run: the handlers :meth:`Trainer.train`
installs (in the main thread only; the previous ones come back when it returns) set a flag that
is read after each step. The step finishes, ``last.pt`` is written (a signal arriving during any
checkpoint write only sets the flag, so the write completes) and :class:`TrainingInterrupted`
is raised (`mldanet train` exits 130). Under torchrun the flag travels in the all-reduce every
step already makes, so all ranks stop after the same step, and they leave together once rank 0
has written. DataLoader workers ignore SIGINT (a Ctrl-C reaches the whole process group; a
worker that died of it would break the main process's next fetch). A signal during validation
(rank 0, at the end of an epoch) is acted on after the next step.
"""

from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from mldanet.config import Config, OptimConfig, save_config
from mldanet.data.base import FrameDataset
from mldanet.data.loader import batch_loader
from mldanet.device import resolve_device
from mldanet.models.checkpoint import (
    checkpoint_config,
    load_checkpoint,
    load_state_dict_checked,
    resolve_checkpoint_path,
)
from mldanet.self_supervised import ModelOutput, SelfSupervisedDepth, sample_noise_seeds
from mldanet.training import distributed
from mldanet.training.checkpoint import (
    link_checkpoint,
    remove_partial_writes,
    require_training_state,
    save_checkpoint,
    weights_payload,
)
from mldanet.training.collapse import CollapseMonitor, map_statistics
from mldanet.training.profiling import StepProfiler
from mldanet.data.sampler import EpochBatchSampler
from mldanet.training.schedule import lr_factor
from mldanet.types import Batch, LossResult

# Logged terms that keep their names (the guards' and the monitor's, the learned weights, the
# learning rate); every other term is a loss, logged as loss/<term>.
UNPREFIXED_TERMS = ("weight/", "log_var/", "lr", "train/", "collapse/", "gates/")

# Model fields a resumed run must share with its checkpoint (the others do not change the weights).
ARCHITECTURE_KEYS = ("backbone", "variant", "decoder_attention", "structure_attention", "multi_level", "decoder_norm", "scales")


# One fused kernel per parameter tensor instead of a dozen element-wise passes: Adam over the demo's
# 65 M parameters took 0.21 s of a 1.36 s CPU step unfused (benchmarks/demo_step.py).
FUSED_ADAM = True


class TrainingStopped(RuntimeError):
    """A guard stopped the run; the message, one line, says why and what to do (`mldanet train` exits 1)."""


class NonFiniteLossError(TrainingStopped):
    """``train.max_bad_steps`` consecutive non-finite losses or gradient norms; a checkpoint was written first."""


class CollapseError(TrainingStopped):
    """The disparity map stayed flat for ``train.collapse_patience`` steps, under ``train.stop_on_collapse``."""


# The signals that stop a run after a checkpoint instead of killing it.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after a step; ``last.pt`` holds that step (`mldanet train` exits 130)."""

    def __init__(self, signal_name: str, step: int, path: Path) -> None:
        super().__init__(f"{signal_name} at step {step}: checkpoint saved to {path}")
        self.signal_name, self.step, self.path = signal_name, step, path


@dataclass
class TrainState:
    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    best_abs_rel: float = math.inf
    bad_steps: int = 0
    skipped_steps: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class StepOutcome:
    """What one training step did.

    loss, variation: the loss and the monitor's disparity variation, read back together.
    flat: the monitor's verdict on the weights the step ran with (all ranks agreeing); None after
    a non-finite loss, which says nothing about the map. skipped: "" when the networks were
    updated, else what was not finite ("loss" or "gradient norm").
    """

    disps: dict[int, Tensor]
    result: LossResult
    loss: float
    variation: float
    flat: bool | None
    skipped: str = ""


def depth_net_groups(depth_net: nn.Module, optim: OptimConfig) -> list[dict[str, Any]]:
    """The depth network's Adam groups: one, or the SA mixing weights γ apart at their own learning-rate
    scale (they are few scalars that the shared rate barely moves in a short run)."""
    mixes = [p for name, p in depth_net.named_parameters() if name.startswith("decoder.structure_attention.") and name.endswith(".gamma")]
    if optim.structure_mix_lr_scale == 1.0 or not mixes:
        return [{"params": list(depth_net.parameters()), "lr_scale": 1.0, "weight_decay": optim.weight_decay}]
    apart = {id(p) for p in mixes}
    return [
        {"params": [p for p in depth_net.parameters() if id(p) not in apart], "lr_scale": 1.0, "weight_decay": optim.weight_decay},
        {"params": mixes, "lr_scale": optim.structure_mix_lr_scale, "weight_decay": 0.0},
    ]


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


class Trainer:
    """Trains one configuration on ``train_set``; after each epoch ``validator(model)`` (when given,
    e.g. :class:`mldanet.evaluation.validation.Validator`) returns ``val/<metric>`` scalars."""

    def __init__(
        self,
        config: Config,
        train_set: FrameDataset,
        validator: Callable[[SelfSupervisedDepth], dict[str, float]] | None = None,
        resume: str | Path | None = None,
        progress: bool = True,
        on_log: Callable[[int, dict[str, float]], None] | None = None,
        log_lines: bool = False,
    ) -> None:
        """progress: a tqdm bar (rank 0). log_lines: a plain line every ``train.log_every`` steps
        (step, loss, steps/s) for logs that a bar would fill with carriage returns."""
        config.validate()
        self.config = config
        self.out = Path(config.train.out)
        self.dist, self.device = distributed.setup(resolve_device(config.train.device))
        self.progress = progress and self.dist.is_main
        self.log_lines = log_lines and self.dist.is_main
        self.on_log = on_log
        # Set by the SIGINT/SIGTERM handlers of train(); read after each step.
        self._stop_signal: int | None = None
        self._stop_agreed = False
        seed_everything(config.train.seed)

        self.model = SelfSupervisedDepth(config).to(self.device)
        if config.train.sync_bn and self.dist.enabled:
            self.model.depth_net = distributed.convert_batchnorm(self.model.depth_net, self.device)
            if self.model.pose_net is not None:
                self.model.pose_net = distributed.convert_batchnorm(self.model.pose_net, self.device)
        self.clipped_parameters = [p for net in (self.depth_net, self.pose_net) if net is not None for p in net.parameters()]

        groups = depth_net_groups(self.depth_net, config.optim)
        if self.pose_net is not None:
            groups.append(
                {"params": list(self.pose_net.parameters()), "lr_scale": config.optim.pose_lr_scale, "weight_decay": config.optim.weight_decay}
            )
        weighting_params = list(self.weighting.parameters())
        if weighting_params:
            # The learned log-variances must not decay towards 0 (that would pull every weight to 1).
            groups.append({"params": weighting_params, "lr_scale": 1.0, "weight_decay": 0.0})
        self.optimizer = torch.optim.Adam(groups, lr=config.optim.lr, fused=FUSED_ADAM)

        amp = config.train.amp if self.device.type == "cuda" else "none"
        self.model.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")

        self.train_set = train_set
        self.validator = validator
        self.sampler = EpochBatchSampler(
            len(train_set), config.optim.batch_size, seed=config.train.seed, rank=self.dist.rank, world_size=self.dist.world_size
        )
        self.steps_per_epoch = len(self.sampler)
        self.total_steps = self.steps_per_epoch * config.optim.epochs
        if config.optim.max_steps:
            self.total_steps = min(self.total_steps, config.optim.max_steps)
        self.state = TrainState()
        self.monitor = CollapseMonitor(config.train.collapse_threshold, config.train.collapse_patience)
        self.last_path = self.out / "checkpoints" / "last.pt"
        self.healthy_path = self.out / "checkpoints" / "healthy.pt"
        # (path, step): the newest checkpoint seen healthy, and the one holding the current weights
        # until a step has run with them (see the module docstring).
        self.healthy_checkpoint: tuple[Path, int] | None = None
        self._unseen: tuple[Path, int] | None = None
        self._bad_kinds: set[str] = set()
        if resume is not None:
            self._load(resume)
        # The model the training steps run: a DDP wrapper under torchrun (the learned loss weights,
        # a few scalars, are averaged by hand). Validation, logging and checkpoints use the plain
        # model (a rank-0-only forward through DDP would wait for the others).
        self.train_model: nn.Module = self.model
        if self.dist.enabled:
            self._check_ranks_start_alike()
            self.train_model = distributed.wrap(
                self.model, self.device, ignore=[f"weighting.{name}" for name, _ in self.weighting.named_parameters()]
            )
        self._writer = None

    @property
    def depth_net(self) -> nn.Module:
        return self.model.depth_net

    @property
    def pose_net(self) -> nn.Module | None:
        return self.model.pose_net

    @property
    def weighting(self) -> nn.Module:
        return self.model.weighting

    # ----------------------------------------------------------------------------- checkpoints
    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "depth_net": self.depth_net.state_dict(),
            "pose_net": self.pose_net.state_dict() if self.pose_net is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "loss_weighting": self.weighting.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.state.epoch,
            "step": self.state.step,
            "batch_in_epoch": self.state.batch_in_epoch,
            "best_abs_rel": self.state.best_abs_rel,
            "bad_steps": self.state.bad_steps,
            "skipped_steps": self.state.skipped_steps,
            "history": self.state.history,
            "collapse_monitor": self.monitor.state_dict(),
            "world_size": self.dist.world_size,
            "rng": rng_state(),
        }

    def checkpoint_sizes(self) -> tuple[int, int]:
        """Bytes of (``last.pt``, a weights-only ``best.pt``), estimated from the tensors they hold: the
        networks and loss weights, and for ``last.pt`` Adam's two moments of every trainable weight."""

        def tensor_bytes(module: nn.Module | None) -> int:
            return 0 if module is None else sum(t.numel() * t.element_size() for t in module.state_dict().values())

        weights = sum(tensor_bytes(m) for m in (self.depth_net, self.pose_net, self.weighting))
        trainable = sum(p.numel() * p.element_size() for p in self.model.parameters() if p.requires_grad)
        return weights + 2 * trainable, weights

    def save(self, name: str = "last.pt") -> Path:
        """Write the checkpoint (rank 0 only; other ranks just return its path).

        ``last.pt`` is not known healthy until the next step: a healthy one it replaces is kept first.
        """
        path = self.out / "checkpoints" / name
        last = name == "last.pt"
        if last:
            self._keep_healthy()
        if self.dist.is_main:
            # Only last.pt is resumed from: the others go without the optimiser state (a third of the size).
            payload = self.checkpoint_payload()
            save_checkpoint(payload if last else weights_payload(payload), path)
            save_config(self.config, self.out / "checkpoints" / "config.yaml")
        if last:
            self._unseen = (path, self.state.step)
        return path

    def _keep_best_only(self) -> None:
        """``train.keep=best`` at the end of a finished run: drop last.pt (and healthy.pt) when best.pt is there."""
        if (self.out / "checkpoints" / "best.pt").is_file():
            for path in (self.last_path, self.healthy_path):
                path.unlink(missing_ok=True)

    def _keep_healthy(self) -> None:
        """If ``last.pt`` is the newest checkpoint known healthy, keep it as ``healthy.pt`` (a hard link)."""
        if self.healthy_checkpoint is not None and _same_path(self.healthy_checkpoint[0], self.last_path):
            if self.dist.is_main:
                link_checkpoint(self.last_path, self.healthy_path)
            self.healthy_checkpoint = (self.healthy_path, self.healthy_checkpoint[1])

    def _seen_healthy(self, checkpoint: tuple[Path, int]) -> None:
        self.healthy_checkpoint = checkpoint
        if self.dist.is_main and _same_path(checkpoint[0], self.last_path):
            # last.pt is healthy and newer: the older copy is no longer needed.
            self.healthy_path.unlink(missing_ok=True)

    def _load(self, resume: str | Path) -> None:
        payload = load_checkpoint(resume, map_location=self.device)
        source = Path(resume)
        self._check_resumable(payload, source)
        require_training_state(payload, resolve_checkpoint_path(source))
        load_state_dict_checked(self.depth_net, payload["depth_net"], source, "depth")
        if self.pose_net is not None:
            if payload.get("pose_net") is None:
                raise ValueError(f"checkpoint {source} has no pose network, but mode {self.config.train.mode} needs one")
            load_state_dict_checked(self.pose_net, payload["pose_net"], source, "pose")
        load_state_dict_checked(self.weighting, payload["loss_weighting"], source, "loss-weighting")
        self.optimizer.load_state_dict(payload["optimizer"])
        for group in self.optimizer.param_groups:  # a checkpoint's own choice (older ones: unfused) is not ours
            group["fused"], group["foreach"] = FUSED_ADAM, None
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
        if "collapse_monitor" in payload:
            self.monitor.load_state_dict(payload["collapse_monitor"])
        source = resolve_checkpoint_path(source)
        self._unseen = (source, self.state.step)
        if self.healthy_path.is_file() and not _same_path(source, self.healthy_path):
            self.healthy_checkpoint = (self.healthy_path, int(load_checkpoint(self.healthy_path, mmap=True)["step"]))
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
    def _set_lr(self) -> float:
        factor = lr_factor(self.state.step, self.steps_per_epoch, self.total_steps, self.config.optim)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.optim.lr * factor * group["lr_scale"]
        return self.config.optim.lr * factor

    def train_step(self, batch: Batch, epoch: int) -> StepOutcome:
        self.model.train()
        lr = self._set_lr()
        statistics = [b.clone() for b in self._buffers()]
        output: ModelOutput = self.train_model(batch, sample_noise_seeds(self.config.train.seed, epoch, batch.index))
        disps, result = output.disps, output.losses
        maps = map_statistics(disps[min(disps)], output.gates)
        result.terms["lr"] = torch.tensor(lr)
        result.terms.update(maps.scalars())
        # One read-back serves the loss check, the progress bar and the monitor.
        loss, variation = torch.stack([result.total.detach().float(), maps.variation]).tolist()
        finite, flat = math.isfinite(loss), self.monitor.is_flat(variation)
        if self.dist.enabled:
            # All ranks skip together (one that skipped backward would leave the others waiting in
            # DDP's gradient all-reduce) and count the same flat steps (so that they stop together).
            # A stop signal rides along: one rank's signal stops every rank after this step.
            finite, flat, go_on = distributed.all_ranks_agree([finite, flat, self._stop_signal is None], self.device)
            self._stop_agreed = not go_on
        if not finite:
            self._skip_update(statistics)
            return StepOutcome(disps, result, loss, variation, None, "loss")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(result.total).backward()
        if self.dist.enabled:
            distributed.average_gradients(self.weighting.parameters())
        # DDP has averaged the gradients: every rank measures and clips the same ones.
        self.scaler.unscale_(self.optimizer)
        grad_norm = self._clip_gradients()
        result.terms["train/grad_norm"] = grad_norm
        if not self.scaler.is_enabled() and not math.isfinite(grad_norm.item()):
            self._skip_update(statistics)
            return StepOutcome(disps, result, loss, variation, flat, "gradient norm")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return StepOutcome(disps, result, loss, variation, flat)

    def _clip_gradients(self) -> Tensor:
        """Clip the depth and pose gradients to ``optim.clip_grad_norm`` (0: only measure them)
        → their global L2 norm before clipping (0-dim)."""
        max_norm = self.config.optim.clip_grad_norm
        if max_norm:
            return torch.nn.utils.clip_grad_norm_(self.clipped_parameters, max_norm)
        return torch.nn.utils.get_total_norm([p.grad for p in self.clipped_parameters if p.grad is not None])

    def _skip_update(self, statistics: list[Tensor]) -> None:
        # The forward pass already moved the batch-norm running statistics (to NaN, when the
        # activations were): restored, a skipped step leaves the networks as they were.
        for buffer, saved in zip(self._buffers(), statistics, strict=True):
            buffer.copy_(saved)
        self.optimizer.zero_grad(set_to_none=True)

    def _buffers(self) -> list[Tensor]:
        return list(self.model.buffers())

    # ----------------------------------------------------------------------------- loop
    def set_total_steps(self, steps: int) -> None:
        """Change the run's length before it is reached (the demo's time budget); the saved config says it."""
        if steps < self.state.step:
            raise ValueError(f"the run is at step {self.state.step} already, past the {steps} asked for")
        self.config.optim.max_steps = steps
        self.total_steps = min(self.steps_per_epoch * self.config.optim.epochs, steps)

    def stop_after_this_step(self) -> None:
        """End :meth:`train` after the step running now, with a checkpoint (an ``on_log`` callback's deadline)."""
        self.stop_at = self.state.step

    def train(self, stop_at_step: int | None = None) -> TrainState:
        """Train to the configured end, or stop (with a checkpoint) after ``stop_at_step`` steps."""
        self.stop_at = min(self.total_steps, stop_at_step or self.total_steps)
        self._stop_signal, self._stop_agreed = None, False
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.out / "config.yaml")
            remove_partial_writes(self.out / "checkpoints")
        profiler = StepProfiler(self.out, self.config.train.profile_steps if self.dist.is_main else 0)
        previous_handlers = self._install_stop_handlers()
        self._line_mark = (time.perf_counter(), self.state.step)
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
            if self._unseen is not None and not self.monitor.streak:
                # No step will run with the final checkpoint's weights: a run ending healthy counts it healthy.
                self._seen_healthy(self._unseen)
                self._unseen = None
            # The ranks finish together, after rank 0's last validation and checkpoint.
            distributed.barrier()
            if self.config.train.keep == "best" and self.state.step >= self.total_steps and self.dist.is_main:
                self._keep_best_only()
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            profiler.close()
            bar.close()
            if self._writer is not None:
                self._writer.close()
        return self.state

    # ----------------------------------------------------------------------------- stop signals
    def _install_stop_handlers(self) -> dict[int, Any]:
        """Make SIGINT/SIGTERM set a flag instead of killing the run → the handlers they replace.

        Python allows signal handlers only in the main thread; elsewhere (a run in a thread) the
        signals keep their handlers and nothing is installed.
        """
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {signum: signal.signal(signum, self._request_stop) for signum in STOP_SIGNALS}

    def _request_stop(self, signum: int, frame: Any) -> None:
        """Signal handler: only sets the flag, so a checkpoint being written is finished first."""
        first = self._stop_signal is None
        self._stop_signal = signum
        if not self.dist.is_main:
            return
        name = signal.Signals(signum).name
        if first:
            text = (
                f"{name}: stopping after this step and writing {self.last_path} "
                "(wait for it; a second signal does not hurry it)"
            )
        else:
            text = (
                f"{name} again: still finishing the step and {self.last_path}; SIGKILL (kill -9) stops at once, "
                "losing the steps since the last checkpoint"
            )
        # os.write, not print: the handler may run while the main thread is inside a print to the
        # same stream, which Python refuses as a reentrant call.
        os.write(2, f"\nmldanet train: {text}\n".encode())

    def _stop_requested(self) -> bool:
        """Whether a stop signal has arrived, as every rank agrees (see train_step)."""
        return self._stop_agreed if self.dist.enabled else self._stop_signal is not None

    def _stop_now(self, saved: bool) -> None:
        """Write last.pt (unless this step already did), wait for the ranks, raise TrainingInterrupted."""
        path = self.last_path if saved else self.save()
        distributed.barrier()
        name = signal.Signals(self._stop_signal).name if self._stop_signal is not None else "a stop signal on another rank"
        raise TrainingInterrupted(name, self.state.step, path)

    def _run_epoch(self, bar: tqdm, profiler: StepProfiler) -> None:
        epoch = self.state.epoch
        self.train_set.set_epoch(epoch)
        self.sampler.set_epoch(epoch, start_batch=self.state.batch_in_epoch)
        cfg = self.config.train
        tick = time.perf_counter()
        for batch in batch_loader(self.train_set, self.sampler, self.config.data.num_workers, self.device):
            batch = batch.to(self.device, non_blocking=True)
            outcome = self.train_step(batch, epoch)
            result = outcome.result
            profiler.step()
            # Counted before the step number moves on: a checkpoint written at this number holds
            # the weights the step ran with.
            collapsed = self._observe(outcome)
            self.state.step += 1
            self.state.batch_in_epoch += 1
            if not outcome.skipped:
                self.state.bad_steps = 0
                self._bad_kinds.clear()
            else:
                self.state.bad_steps += 1
                self.state.skipped_steps += 1
                self._bad_kinds.add({"loss": "losses", "gradient norm": "gradient norms"}[outcome.skipped])
                if self.dist.is_main:
                    value = (
                        f"{outcome.loss}" if outcome.skipped == "loss"
                        else f"{result.terms['train/grad_norm'].item()}, loss {outcome.loss:.4f}"
                    )
                    tqdm.write(
                        f"step {self.state.step}: non-finite {outcome.skipped} ({value}), update skipped "
                        f"({self.state.skipped_steps} skipped so far)"
                    )
                if self.state.bad_steps >= cfg.max_bad_steps:
                    path = self.save()
                    raise NonFiniteLossError(
                        f"{self.state.bad_steps} consecutive non-finite {' or '.join(sorted(self._bad_kinds))} at step "
                        f"{self.state.step} ({self.state.skipped_steps} skipped in all); checkpoint saved to {path}. "
                        "Lower the learning rate or check the data (hints, images) of the last batches."
                    )
            now = time.perf_counter()
            rate = batch.size / max(now - tick, 1e-9)
            tick = now
            bar.update(1)
            postfix = {"loss": f"{outcome.loss:.4f}", "ex_s": f"{rate:.1f}", "epoch": epoch, "skipped": self.state.skipped_steps}
            if self.monitor.streak:
                postfix["flat"] = self.monitor.streak
            bar.set_postfix(postfix)
            is_main = self.dist.is_main
            if is_main and (self.state.step % cfg.log_every == 0 or self.state.step == self.total_steps):
                self._log_scalars(result)
            if is_main and cfg.image_every and self.state.step % cfg.image_every == 0:
                self._log_images(batch, outcome.disps)
            if collapsed:
                self._report_collapse(result)
            saved = bool(cfg.checkpoint_every) and self.state.step % cfg.checkpoint_every == 0
            if saved:
                self.save()
            if self.log_lines and (self.state.step % cfg.log_every == 0 or self.state.step == self.total_steps):
                self._print_log_line(outcome, epoch)
            if self.state.step >= self.stop_at:
                break
            # Checked after the end test: a run stopped at its last step ends as a finished one.
            if self._stop_requested():
                self._stop_now(saved)
        epoch_done = self.state.batch_in_epoch >= self.steps_per_epoch
        if epoch_done:
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
        if epoch_done or self.state.step >= self.total_steps:
            if cfg.validate and self.validator is not None and self.dist.is_main:
                self.validate()
        if epoch_done or self.state.step >= self.stop_at:
            self.save()

    # ----------------------------------------------------------------------------- collapse
    def _observe(self, outcome: StepOutcome) -> bool:
        """Count the monitor's verdict on the weights the step ran with → whether to report a collapse.

        Those weights are a checkpoint's when it was written since the last update (at this step
        number): that checkpoint is now known healthy, or not.
        """
        if outcome.flat is None:
            return False
        unseen, self._unseen = self._unseen, None
        if unseen is not None and unseen[1] == self.state.step and not outcome.flat:
            self._seen_healthy(unseen)
        return self.monitor.update(outcome.variation, outcome.flat)

    def _report_collapse(self, result: LossResult) -> None:
        """One warning line, or :class:`CollapseError` under ``train.stop_on_collapse``; both name the
        last healthy checkpoint, which first gets a name that later checkpoints do not overwrite."""
        self._keep_healthy()
        cfg = self.config
        monitor = self.monitor
        saturated = [
            f"level {key.split('/')[1]} {float(value):.0%}" for key, value in result.terms.items()
            if key.startswith("gates/") and key.endswith("/saturated")
        ]
        what = (
            f"the predicted disparity has been flat for {monitor.streak} steps at step {self.state.step} (variation "
            f"{monitor.variation:.1e} < train.collapse_threshold={monitor.threshold:g}"
            + (f"; saturated structure-attention gates: {', '.join(saturated)}" if saturated else "")
            + "): the depth decoder has collapsed, which training has not been seen to undo"
        )
        clip = cfg.optim.clip_grad_norm
        advice = (
            f"keep optim.clip_grad_norm on (now {clip:g})" if clip else "turn optim.clip_grad_norm on (it is 0)"
        ) + " and check the data (hints, images)"
        if self.healthy_checkpoint is None:
            healthy = "no checkpoint was written while the map was healthy: start again with a lower optim.lr"
        else:
            path, step = self.healthy_checkpoint
            healthy = (
                f"the last healthy checkpoint is {path} (step {step}): resume from it with a learning rate below "
                f"{cfg.optim.lr:g} (mldanet train --resume {path} --lr LR)"
            )
        if cfg.train.stop_on_collapse:
            raise CollapseError(f"{what}; {healthy}; {advice}.")
        if self.dist.is_main:
            tqdm.write(f"step {self.state.step}: warning: {what}; {healthy}; {advice}. Training goes on "
                       "(train.stop_on_collapse=true stops here).")

    # ----------------------------------------------------------------------------- logging
    def _print_log_line(self, outcome: StepOutcome, epoch: int) -> None:
        """One plain line (instead of the progress bar): step, loss and the rate since the last line."""
        now = time.perf_counter()
        then, step_then = self._line_mark
        self._line_mark = (now, self.state.step)
        steps_per_s = (self.state.step - step_then) / max(now - then, 1e-9)
        samples_per_s = steps_per_s * self.config.optim.batch_size * self.dist.world_size
        line = (
            f"step {self.state.step}/{self.total_steps} epoch {epoch}: loss {outcome.loss:.4f}, "
            f"{steps_per_s:.2f} steps/s ({samples_per_s:.1f} samples/s), {self.state.skipped_steps} skipped"
        )
        if self.monitor.streak:
            line += f", flat for {self.monitor.streak} steps"
        print(line, flush=True)

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.out / "tensorboard"))
        return self._writer

    def _log_scalars(self, result: LossResult) -> None:
        values = {"loss/total": float(result.total.detach()), "train/skipped_steps": float(self.state.skipped_steps)}
        values.update({k if k.startswith(UNPREFIXED_TERMS) else f"loss/{k}": float(v) for k, v in result.terms.items()})
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
    def validate(self) -> dict[str, float]:
        """Run the validator on the model; a better abs_rel writes ``best.pt``. Logged and returned."""
        metrics = self.validator(self.model)
        if "val/abs_rel" in metrics and metrics["val/abs_rel"] < self.state.best_abs_rel:
            self.state.best_abs_rel = float(metrics["val/abs_rel"])
            if self.config.train.keep != "last":
                self.save("best.pt")
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, self.state.step)
        self.state.history.append({"step": float(self.state.step), **metrics})
        tqdm.write("validation: " + ", ".join(f"{k[4:]} {v:.4f}" for k, v in metrics.items()))
        return metrics


def _same_path(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()

