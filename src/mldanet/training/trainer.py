"""The training loop: depth + pose networks, the optimiser with AMP and DDP, and the hooks that
keep checkpoints, watch for collapse, stop on signals and write the logs (:mod:`mldanet.training.hooks`).

A resumed run replays exactly the batches, augmentations and updates of an uninterrupted one:
batch order, augmentation, automasking noise and the learning rate are functions of the seed,
epoch, sample index and step. Under torchrun every rank trains on its share of each global batch
and rank 0 alone logs, validates and writes checkpoints (of the unwrapped networks). Why each
guard acts when it does: docs/ARCHITECTURE.md, "Training".
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from mldanet.config import Config, OptimConfig, architecture_keys
from mldanet.data.base import FrameDataset
from mldanet.data.loader import batch_loader
from mldanet.data.sampler import EpochBatchSampler
from mldanet.device import resolve_device
from mldanet.models.checkpoint import checkpoint_config, load_checkpoint, load_state_dict_checked
from mldanet.run_dir import LAST, RunDir
from mldanet.self_supervised import ModelOutput, SelfSupervisedDepth, sample_noise_seeds
from mldanet.training import distributed
from mldanet.training.checkpoint import require_training_state
from mldanet.training.checkpoint_keeper import CheckpointKeeper
from mldanet.training.collapse import map_statistics
from mldanet.training.hooks import (  # noqa: F401 - the errors are the trainer's interface
    BadStepGuard,
    CollapseError,
    CollapseReport,
    History,
    Hook,
    LogCallback,
    LogLines,
    NonFiniteLossError,
    ProfilerHook,
    ProgressBar,
    SignalStop,
    TensorBoardLog,
    TrainingInterrupted,
    TrainingStopped,
    Validation,
    load_fields,
    saved_fields,
)
from mldanet.training.schedule import lr_factor
from mldanet.types import Batch, LossResult

# Logged terms that keep their names (the guards' and the monitor's, the learned weights, the
# learning rate); every other term is a loss, logged as loss/<term>.
UNPREFIXED_TERMS = ("weight/", "log_var/", "lr", "train/", "collapse/", "gates/")


# One fused kernel per parameter tensor instead of a dozen element-wise passes: Adam over the demo's
# 65 M parameters took 0.21 s of a 1.36 s CPU step unfused (benchmarks/demo_step.py).
FUSED_ADAM = True


@dataclass
class TrainState:
    """Where the loop stands (saved as the checkpoint's ``epoch``, ``step``, ``batch_in_epoch``). The
    hooks' state reads through it by field name (``state.history``, ``state.skipped_steps``,
    ``state.best_abs_rel``), so callers need not know which hook owns what."""

    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    hooks: list[Hook] = field(default_factory=list, repr=False, compare=False, metadata={"saved": False})

    def __getattr__(self, name: str) -> Any:
        for hook in self.__dict__.get("hooks", ()):
            if name in saved_fields(hook.state):
                return getattr(hook.state, name)
        raise AttributeError(f"no training state {name!r}")


@dataclass
class StepOutcome:
    """What one training step did.

    loss, variation: the loss and the monitor's disparity variation, read back together.
    flat: the monitor's verdict on the weights the step ran with (all ranks agreeing); None after
    a non-finite loss, which says nothing about the map. skipped: "" when the networks were
    updated, else what was not finite ("loss" or "gradient norm"). scalars: the logged values,
    read back once when a log output first asks (:meth:`Trainer.step_scalars`).
    """

    disps: dict[int, Tensor]
    result: LossResult
    loss: float
    variation: float
    flat: bool | None
    skipped: str = ""
    scalars: dict[str, float] | None = None


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
        hooks: Sequence[Hook] = (),
    ) -> None:
        """progress: a tqdm bar (rank 0). log_lines: a plain line every ``train.log_every`` steps
        (step, loss, steps/s) for logs that a bar would fill with carriage returns. on_log(step,
        scalars): called at each log step (rank 0); it may be assigned later. hooks: more
        :class:`~mldanet.training.hooks.Hook` objects, called after the built-in logs and before
        validation and the checkpoints (their state is saved and resumed with the others)."""
        config.validate()
        self.config = config
        self.run = RunDir(config.train.out)
        self.out = self.run.root
        self.dist, self.device = distributed.setup(resolve_device(config.train.device))
        self.on_log = on_log
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
        self.total_steps = self._run_length()
        self.stop_at = self.total_steps

        main, train = self.dist.is_main, config.train
        self.checkpoints = CheckpointKeeper(self.run, config, main)
        self.collapse = CollapseReport(config, self.checkpoints, main)
        self.signal_stop = SignalStop(self.run.last, main, self.dist.enabled)
        # The order the loop calls them in: a step's checkpoint comes after its logs, the stop last.
        self.hooks: list[Hook] = [
            ProfilerHook(self.out, train.profile_steps if main else 0),
            BadStepGuard(train.max_bad_steps, main),
            ProgressBar(progress and main),
            TensorBoardLog(self.run.tensorboard, train.image_every, main),
            History(main),
            LogCallback(main),
            self.collapse,
            *hooks,
            Validation(train.validate, main),
            self.checkpoints,
            LogLines(log_lines and main),
            self.signal_stop,
        ]
        self.state = TrainState(hooks=self.hooks)
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

    @property
    def depth_net(self) -> nn.Module:
        return self.model.depth_net

    @property
    def pose_net(self) -> nn.Module | None:
        return self.model.pose_net

    @property
    def weighting(self) -> nn.Module:
        return self.model.weighting

    @property
    def monitor(self):
        return self.collapse.monitor

    @property
    def healthy_checkpoint(self) -> tuple[Path, int] | None:
        return self.checkpoints.healthy_checkpoint

    @property
    def last_path(self) -> Path:
        return self.run.last

    # ----------------------------------------------------------------------------- the loop
    def train(self, stop_at_step: int | None = None) -> TrainState:
        """Train to the configured end, or stop (with a checkpoint) after ``stop_at_step`` steps."""
        self.stop_at = min(self.total_steps, stop_at_step or self.total_steps)
        try:
            self._call("before_train")
            while self.state.step < self.stop_at and self.state.epoch < self.config.optim.epochs:
                self._run_epoch()
            self._call("after_train")
            distributed.barrier()  # the ranks finish together, after rank 0's last validation and checkpoint
        finally:
            for hook in self.hooks:
                hook.close()
        return self.state

    def _run_epoch(self) -> None:
        state = self.state
        self.train_set.set_epoch(state.epoch)
        self.sampler.set_epoch(state.epoch, start_batch=state.batch_in_epoch)
        self._call("before_epoch")
        for batch in batch_loader(self.train_set, self.sampler, self.config.data.num_workers, self.device):
            batch = batch.to(self.device, non_blocking=True)
            outcome = self.train_step(batch, state.epoch)
            state.step += 1
            state.batch_in_epoch += 1
            self._call("record_step", batch, outcome)
            self._call("after_step", batch, outcome)
            if state.step >= self.stop_at:
                break
        finished = state.batch_in_epoch >= self.steps_per_epoch
        if finished:
            state.epoch += 1
            state.batch_in_epoch = 0
        self._call("after_epoch", finished)

    def _call(self, event: str, *args: Any) -> None:
        for hook in self.hooks:
            getattr(hook, event)(self, *args)

    def set_total_steps(self, steps: int) -> None:
        """Change the run's length before it is reached (the demo's time budget); the saved config says it."""
        if steps < self.state.step:
            raise ValueError(f"the run is at step {self.state.step} already, past the {steps} asked for")
        self.config.optim.max_steps = steps
        self.total_steps = self._run_length()

    def _run_length(self) -> int:
        """The steps the run takes: its epochs, cut at ``optim.max_steps`` when that is set."""
        epochs = self.steps_per_epoch * self.config.optim.epochs
        return min(epochs, self.config.optim.max_steps) if self.config.optim.max_steps else epochs

    def stop_after_this_step(self) -> None:
        """End :meth:`train` after the step running now, with a checkpoint (an ``on_log`` callback's deadline)."""
        self.stop_at = self.state.step

    def is_log_step(self) -> bool:
        """Whether the step just counted is one the logs record (every ``train.log_every``, and the last)."""
        return self.state.step % self.config.train.log_every == 0 or self.state.step == self.total_steps

    def step_scalars(self, outcome: StepOutcome) -> dict[str, float]:
        """The step's logged values by name, read back from the device once."""
        if outcome.scalars is None:
            result = outcome.result
            values = {"loss/total": float(result.total.detach()), "train/skipped_steps": float(self.state.skipped_steps)}
            values.update({k if k.startswith(UNPREFIXED_TERMS) else f"loss/{k}": float(v) for k, v in result.terms.items()})
            outcome.scalars = values
        return outcome.scalars

    def validate(self) -> dict[str, float]:
        """Run the validator on the model; the hooks log the metrics and a better abs_rel writes ``best.pt``."""
        metrics = self.validator(self.model)
        self._call("after_validation", metrics)
        tqdm.write("validation: " + ", ".join(f"{k[4:]} {v:.4f}" for k, v in metrics.items()))
        return metrics

    # ----------------------------------------------------------------------------- checkpoints
    def checkpoint_payload(self) -> dict[str, Any]:
        """The full checkpoint: networks, optimiser, loop position and every hook's state (each under its own keys)."""
        payload: dict[str, Any] = {
            "config": self.config.to_dict(),
            "depth_net": self.depth_net.state_dict(),
            "pose_net": self.pose_net.state_dict() if self.pose_net is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "loss_weighting": self.weighting.state_dict(),
            "scaler": self.scaler.state_dict(),
            **saved_fields(self.state),
        }
        for hook in self.hooks:
            part = hook.state_dict()
            clash = sorted(set(part) & set(payload))
            if clash:
                raise AssertionError(f"{type(hook).__name__} saves {clash}, which another part of the checkpoint holds")
            payload.update(part)
        payload.update(world_size=self.dist.world_size, rng=rng_state())
        return payload

    def checkpoint_sizes(self) -> tuple[int, int]:
        """Bytes of (``last.pt``, a weights-only ``best.pt``), estimated from the tensors they hold: the
        networks and loss weights, and for ``last.pt`` Adam's two moments of every trainable weight."""

        def tensor_bytes(module: nn.Module | None) -> int:
            return 0 if module is None else sum(t.numel() * t.element_size() for t in module.state_dict().values())

        weights = sum(tensor_bytes(m) for m in (self.depth_net, self.pose_net, self.weighting))
        trainable = sum(p.numel() * p.element_size() for p in self.model.parameters() if p.requires_grad)
        return weights + 2 * trainable, weights

    def save(self, name: str = LAST) -> Path:
        """Write checkpoint ``name`` of the run folder (rank 0 only; other ranks just return its path)."""
        return self.checkpoints.save(self, name)

    def _load(self, resume: str | Path) -> None:
        payload = load_checkpoint(resume, map_location=self.device)
        source = Path(resume)
        self._check_resumable(payload, source)
        require_training_state(payload, RunDir.resolve(source))
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
        load_fields(self.state, payload)
        for hook in self.hooks:
            hook.load_state_dict(payload)
        self.checkpoints.resumed(RunDir.resolve(source), self.state.step)
        set_rng_state(payload["rng"])

    def _check_resumable(self, payload: dict[str, Any], source: Path) -> None:
        """Refuse, naming the checkpoint, what would load wrong weights or break the exact batch order."""
        trained = checkpoint_config(payload).to_dict()["model"]
        wanted = self.config.to_dict()["model"]
        changed = [f"{key} {trained[key]!r} -> {wanted[key]!r}" for key in architecture_keys() if trained[key] != wanted[key]]
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
                f"{self.run.last} (put --out on a shared filesystem)"
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
            finite, flat, go_on = distributed.all_ranks_agree([finite, flat, self.signal_stop.signum is None], self.device)
            self.signal_stop.agreed = not go_on
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
