"""The training loop's hooks: each policy of a run is one object that owns its state.

The loop (:meth:`mldanet.training.trainer.Trainer.train`) calls, on every hook in the trainer's
order: ``before_train``; per epoch ``before_epoch``; per step ``record_step`` (fold the step into
the hook's state; every hook records before any acts, so that a checkpoint written by one holds
the others' counts of this step) and then ``after_step`` (act on it: print, log, write a
checkpoint, stop); ``after_validation`` for each validation; ``after_epoch`` when the loop leaves
an epoch's batches (at its end, or stopped inside it); ``after_train``; ``close`` always, also
after an error.

A hook's part of the checkpoint is its ``state``, a dataclass: each field is saved under its own
name at the top of the payload and loaded back when the checkpoint has it (so a checkpoint
written before a field existed resumes with the field's default). A new piece of training state
is one new field.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from mldanet.training import distributed
from mldanet.training.collapse import CollapseMonitor
from mldanet.training.profiling import StepProfiler

if TYPE_CHECKING:
    from mldanet.config import Config
    from mldanet.training.checkpoint_keeper import CheckpointKeeper
    from mldanet.training.trainer import StepOutcome, Trainer
    from mldanet.types import Batch


class TrainingStopped(RuntimeError):
    """A guard stopped the run; the message, one line, says why and what to do (`mldanet train` exits 1)."""


class NonFiniteLossError(TrainingStopped):
    """``train.max_bad_steps`` consecutive non-finite losses or gradient norms; a checkpoint was written first."""


class CollapseError(TrainingStopped):
    """The disparity map stayed flat for ``train.collapse_patience`` steps, under ``train.stop_on_collapse``."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after a step; ``last.pt`` holds that step (`mldanet train` exits 130)."""

    def __init__(self, signal_name: str, step: int, path: Path) -> None:
        super().__init__(f"{signal_name} at step {step}: checkpoint saved to {path}")
        self.signal_name, self.step, self.path = signal_name, step, path


def saved_fields(state: Any) -> dict[str, Any]:
    """A state dataclass → {field: value} for the checkpoint (fields with metadata saved=False left out)."""
    if state is None:
        return {}
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state) if f.metadata.get("saved", True)}


def load_fields(state: Any, payload: dict[str, Any]) -> None:
    """Set the fields of ``state`` that ``payload`` holds (the others keep their defaults)."""
    for name in saved_fields(state):
        if name in payload:
            setattr(state, name, payload[name])


class Hook:
    """One policy of the training loop (see the module docstring); every method does nothing by default."""

    state: Any = None

    def before_train(self, trainer: Trainer) -> None: ...

    def before_epoch(self, trainer: Trainer) -> None: ...

    def record_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None: ...

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None: ...

    def after_validation(self, trainer: Trainer, metrics: dict[str, float]) -> None: ...

    def after_epoch(self, trainer: Trainer, finished: bool) -> None: ...

    def after_train(self, trainer: Trainer) -> None: ...

    def close(self) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return saved_fields(self.state)

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        load_fields(self.state, payload)


# ------------------------------------------------------------------------------------- guards
@dataclass
class BadStepCounts:
    bad_steps: int = 0  # consecutive non-finite steps
    skipped_steps: int = 0  # in all


class BadStepGuard(Hook):
    """A step with a non-finite loss or gradient norm was skipped (by the step); after
    ``max_bad_steps`` in a row the run stops with a checkpoint (:class:`NonFiniteLossError`)."""

    def __init__(self, max_bad_steps: int, is_main: bool) -> None:
        self.max_bad_steps, self.is_main = max_bad_steps, is_main
        self.state = BadStepCounts()
        self._kinds: set[str] = set()

    def record_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        if not outcome.skipped:
            self.state.bad_steps = 0
            self._kinds.clear()
        else:
            self.state.bad_steps += 1
            self.state.skipped_steps += 1
            self._kinds.add({"loss": "losses", "gradient norm": "gradient norms"}[outcome.skipped])

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        if not outcome.skipped:
            return
        step, counts = trainer.state.step, self.state
        if self.is_main:
            value = (
                f"{outcome.loss}" if outcome.skipped == "loss"
                else f"{outcome.result.terms['train/grad_norm'].item()}, loss {outcome.loss:.4f}"
            )
            tqdm.write(
                f"step {step}: non-finite {outcome.skipped} ({value}), update skipped "
                f"({counts.skipped_steps} skipped so far)"
            )
        if counts.bad_steps >= self.max_bad_steps:
            path = trainer.save()
            raise NonFiniteLossError(
                f"{counts.bad_steps} consecutive non-finite {' or '.join(sorted(self._kinds))} at step "
                f"{step} ({counts.skipped_steps} skipped in all); checkpoint saved to {path}. "
                "Lower the learning rate or check the data (hints, images) of the last batches."
            )


class CollapseReport(Hook):
    """Counts flat maps (:class:`CollapseMonitor`, saved as ``collapse_monitor``) and reports a
    collapse once: a warning line, or :class:`CollapseError` under ``train.stop_on_collapse``; both
    name the last healthy checkpoint, which first gets a name later checkpoints do not overwrite."""

    def __init__(self, config: Config, keeper: CheckpointKeeper, is_main: bool) -> None:
        self.config, self.keeper, self.is_main = config, keeper, is_main
        self.monitor = CollapseMonitor(config.train.collapse_threshold, config.train.collapse_patience)
        self._due = False

    def state_dict(self) -> dict[str, Any]:
        return {"collapse_monitor": self.monitor.state_dict()}

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        if "collapse_monitor" in payload:
            self.monitor.load_state_dict(payload["collapse_monitor"])

    def record_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        # A non-finite loss says nothing about the map.
        self._due = outcome.flat is not None and self.monitor.update(outcome.variation, outcome.flat)

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        if self._due:
            self.report(trainer.state.step, outcome)

    def report(self, step: int, outcome: StepOutcome) -> None:
        self.keeper.keep_healthy()
        cfg, monitor = self.config, self.monitor
        saturated = [
            f"level {key.split('/')[1]} {float(value):.0%}" for key, value in outcome.result.terms.items()
            if key.startswith("gates/") and key.endswith("/saturated")
        ]
        what = (
            f"the predicted disparity has been flat for {monitor.streak} steps at step {step} (variation "
            f"{monitor.variation:.1e} < train.collapse_threshold={monitor.threshold:g}"
            + (f"; saturated structure-attention gates: {', '.join(saturated)}" if saturated else "")
            + "): the depth decoder has collapsed, which training has not been seen to undo"
        )
        clip = cfg.optim.clip_grad_norm
        advice = (
            f"keep optim.clip_grad_norm on (now {clip:g})" if clip else "turn optim.clip_grad_norm on (it is 0)"
        ) + " and check the data (hints, images)"
        if self.keeper.healthy_checkpoint is None:
            healthy = "no checkpoint was written while the map was healthy: start again with a lower optim.lr"
        else:
            path, at = self.keeper.healthy_checkpoint
            healthy = (
                f"the last healthy checkpoint is {path} (step {at}): resume from it with a learning rate below "
                f"{cfg.optim.lr:g} (mldanet train --resume {path} --lr LR)"
            )
        if cfg.train.stop_on_collapse:
            raise CollapseError(f"{what}; {healthy}; {advice}.")
        if self.is_main:
            tqdm.write(f"step {step}: warning: {what}; {healthy}; {advice}. Training goes on "
                       "(train.stop_on_collapse=true stops here).")


# The signals that stop a run after a checkpoint instead of killing it.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalStop(Hook):
    """SIGINT/SIGTERM stop the run after the step they arrive in, with ``last.pt`` written
    (:class:`TrainingInterrupted`). The handlers only set a flag, so a checkpoint being written is
    finished first; under torchrun the flag rides in the step's all-reduce (the step reads
    ``signum`` and sets ``agreed``), so every rank stops after the same step."""

    def __init__(self, last: Path, is_main: bool, distributed_run: bool) -> None:
        self.last, self.is_main, self.distributed_run = last, is_main, distributed_run
        self.signum: int | None = None
        self.agreed = False
        self._previous: dict[int, Any] = {}

    def before_train(self, trainer: Trainer) -> None:
        self.signum, self.agreed = None, False
        self._previous = self.install_handlers()

    def install_handlers(self) -> dict[int, Any]:
        """Make SIGINT/SIGTERM set the flag → the handlers they replace. Python allows signal handlers
        only in the main thread; elsewhere (a run in a thread) nothing is installed."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {signum: signal.signal(signum, self._request_stop) for signum in STOP_SIGNALS}

    def _request_stop(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        self.signum = signum
        if not self.is_main:
            return
        name = signal.Signals(signum).name
        if first:
            text = f"{name}: stopping after this step and writing {self.last} (wait for it; a second signal does not hurry it)"
        else:
            text = (
                f"{name} again: still finishing the step and {self.last}; SIGKILL (kill -9) stops at once, "
                "losing the steps since the last checkpoint"
            )
        # os.write, not print: the handler may run while the main thread is inside a print to the
        # same stream, which Python refuses as a reentrant call.
        os.write(2, f"\nmldanet train: {text}\n".encode())

    def requested(self) -> bool:
        """Whether a stop signal has arrived, as every rank agrees."""
        return self.agreed if self.distributed_run else self.signum is not None

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        # After the end test: a run stopped at its last step ends as a finished one.
        if trainer.state.step < trainer.stop_at and self.requested():
            path = trainer.checkpoints.ensure_saved(trainer)
            distributed.barrier()
            name = signal.Signals(self.signum).name if self.signum is not None else "a stop signal on another rank"
            raise TrainingInterrupted(name, trainer.state.step, path)

    def close(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


class ProfilerHook(Hook):
    """``train.profile_steps``: a torch.profiler trace of that many steps (:class:`StepProfiler`)."""

    def __init__(self, out: Path, steps: int) -> None:
        self.out, self.steps = out, steps
        self.profiler: StepProfiler | None = None

    def before_train(self, trainer: Trainer) -> None:
        self.profiler = StepProfiler(self.out, self.steps)

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        self.profiler.step()

    def close(self) -> None:
        if self.profiler is not None:
            self.profiler.close()


class Validation(Hook):
    """After each epoch (and at the run's end), when ``train.validate`` and a validator are given: rank 0 validates."""

    def __init__(self, enabled: bool, is_main: bool) -> None:
        self.enabled, self.is_main = enabled, is_main

    def after_epoch(self, trainer: Trainer, finished: bool) -> None:
        if (finished or trainer.state.step >= trainer.total_steps) and self.enabled and trainer.validator is not None and self.is_main:
            trainer.validate()


# ------------------------------------------------------------------------------------- log outputs
class ProgressBar(Hook):
    """A tqdm bar: loss, samples per second, epoch, skipped steps and ``flat=N`` while the map is flat."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None
        self._tick = 0.0

    def before_train(self, trainer: Trainer) -> None:
        self.bar = tqdm(
            total=trainer.total_steps, initial=trainer.state.step, desc="train", unit="step",
            disable=not self.enabled, dynamic_ncols=True,
        )

    def before_epoch(self, trainer: Trainer) -> None:
        self._tick = time.perf_counter()

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        now = time.perf_counter()
        rate = batch.size / max(now - self._tick, 1e-9)
        self._tick = now
        self.bar.update(1)
        postfix = {"loss": f"{outcome.loss:.4f}", "ex_s": f"{rate:.1f}", "epoch": trainer.state.epoch,
                   "skipped": trainer.state.skipped_steps}
        if trainer.monitor.streak:
            postfix["flat"] = trainer.monitor.streak
        self.bar.set_postfix(postfix)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class LogLines(Hook):
    """A plain line every ``train.log_every`` steps (step, loss, rate since the last line), for logs
    that a bar would fill with carriage returns."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._mark = (0.0, 0)

    def before_train(self, trainer: Trainer) -> None:
        self._mark = (time.perf_counter(), trainer.state.step)

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        if not (self.enabled and trainer.is_log_step()):
            return
        step, now = trainer.state.step, time.perf_counter()
        then, step_then = self._mark
        self._mark = (now, step)
        steps_per_s = (step - step_then) / max(now - then, 1e-9)
        samples_per_s = steps_per_s * trainer.config.optim.batch_size * trainer.dist.world_size
        line = (
            f"step {step}/{trainer.total_steps} epoch {trainer.state.epoch}: loss {outcome.loss:.4f}, "
            f"{steps_per_s:.2f} steps/s ({samples_per_s:.1f} samples/s), {trainer.state.skipped_steps} skipped"
        )
        if trainer.monitor.streak:
            line += f", flat for {trainer.monitor.streak} steps"
        print(line, flush=True)


class TensorBoardLog(Hook):
    """Scalars every ``train.log_every`` steps, pictures every ``train.image_every``, validation metrics (rank 0)."""

    def __init__(self, folder: Path, image_every: int, is_main: bool) -> None:
        self.folder, self.image_every, self.is_main = folder, image_every, is_main
        self._writer = None

    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.folder))
        return self._writer

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        if not self.is_main:
            return
        step = trainer.state.step
        if trainer.is_log_step():
            for name, value in trainer.step_scalars(outcome).items():
                self.writer.add_scalar(name, value, step)
        if self.image_every and step % self.image_every == 0:
            self._log_images(step, batch, outcome.disps)

    def _log_images(self, step: int, batch: Batch, disps: dict) -> None:
        from mldanet.visualize import colorize_depth

        self.writer.add_image("input/0", batch.images[0][0].clamp(0, 1), step)
        disp = disps[0][0, 0].detach().float().cpu().numpy()
        self.writer.add_image("disparity/0", colorize_depth(disp, vmax=float(np.percentile(disp, 95))), step, dataformats="HWC")
        if batch.depth_hint is not None:
            hint = batch.depth_hint[0, 0].cpu().numpy()
            hint_disp = np.where(hint > 0, 1.0 / np.maximum(hint, 1e-6), 0.0)
            self.writer.add_image("hint/0", colorize_depth(hint_disp), step, dataformats="HWC")

    def after_validation(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, trainer.state.step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@dataclass
class HistoryState:
    history: list[dict[str, float]] = field(default_factory=list)  # logged scalars and validations, with "step"


class History(Hook):
    """The logged scalars and validation metrics, kept in the checkpoint (the demo's curves)."""

    def __init__(self, is_main: bool) -> None:
        self.is_main = is_main
        self.state = HistoryState()

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        if self.is_main and trainer.is_log_step():
            self.state.history.append({"step": float(trainer.state.step), **trainer.step_scalars(outcome)})

    def after_validation(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        self.state.history.append({"step": float(trainer.state.step), **metrics})

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        self.state.history = list(payload.get("history", []))


class LogCallback(Hook):
    """``trainer.on_log(step, scalars)`` at each log step (rank 0), read when called: it may be set after construction."""

    def __init__(self, is_main: bool) -> None:
        self.is_main = is_main

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        if self.is_main and trainer.on_log is not None and trainer.is_log_step():
            trainer.on_log(trainer.state.step, trainer.step_scalars(outcome))
