"""Keeping a run's checkpoints: ``last.pt`` (periodic and at each epoch's end), ``best.pt`` (a better
validation abs_rel) and ``healthy.pt`` (the newest checkpoint whose map is known not flat).

A step runs with the weights of the last update, so the step after ``last.pt`` is written tells
whether it is healthy. Before ``last.pt`` is replaced it is kept as ``healthy.pt`` (a hard link)
if it is the newest one known healthy; ``healthy.pt`` goes as soon as a newer ``last.pt`` is
seen healthy. The reasoning, and its two exceptions (a run's final checkpoint, a resumed run),
is in docs/ARCHITECTURE.md ("Training").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mldanet.config import Config, save_config
from mldanet.models.checkpoint import load_checkpoint
from mldanet.run_dir import LAST, RunDir
from mldanet.training.checkpoint import link_checkpoint, remove_partial_writes, save_checkpoint, weights_payload
from mldanet.training.hooks import Hook

if TYPE_CHECKING:
    from mldanet.training.trainer import StepOutcome, Trainer
    from mldanet.types import Batch


@dataclass
class BestState:
    best_abs_rel: float = math.inf


class CheckpointKeeper(Hook):
    """Writes and keeps the checkpoints of the run in ``run`` (rank 0 writes; every rank keeps the
    bookkeeping, so that all agree on the paths they name)."""

    def __init__(self, run: RunDir, config: Config, is_main: bool) -> None:
        self.run, self.config, self.is_main = run, config, is_main
        self.state = BestState()
        # (path, step): the newest checkpoint seen healthy, and the one holding the current weights
        # until a step has run with them.
        self.healthy_checkpoint: tuple[Path, int] | None = None
        self._unseen: tuple[Path, int] | None = None
        self._written_step: int | None = None

    def before_train(self, trainer: Trainer) -> None:
        if self.is_main:
            self.run.root.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.run.config)
            remove_partial_writes(self.run.checkpoints)

    def resumed(self, source: Path, step: int) -> None:
        """The run continues from checkpoint ``source`` (at ``step``): its first step judges it, and a
        ``healthy.pt`` in the run folder (not ``source`` itself) is the healthy one so far."""
        self._unseen = (source, step)
        healthy = self.run.healthy
        if healthy.is_file() and not _same_path(source, healthy):
            self.healthy_checkpoint = (healthy, int(load_checkpoint(healthy, mmap=True)["step"]))

    def save(self, trainer: Trainer, name: str = LAST) -> Path:
        """Write checkpoint ``name`` (rank 0 only; other ranks just return its path). Only ``last.pt``
        is resumed from: the others go without the optimiser state (a third of the size)."""
        path = self.run.checkpoint(name)
        last = name == LAST
        if last:
            self.keep_healthy()
        if self.is_main:
            payload = trainer.checkpoint_payload()
            save_checkpoint(payload if last else weights_payload(payload), path)
            save_config(self.config, self.run.checkpoint_config)
        if last:
            self._unseen = (path, trainer.state.step)
            self._written_step = trainer.state.step
        return path

    def ensure_saved(self, trainer: Trainer) -> Path:
        """``last.pt`` holding the current step: written unless this step already did."""
        return self.run.last if self._written_step == trainer.state.step else self.save(trainer)

    def record_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        """The step ran with the weights of a checkpoint written since the last update (at the step
        number before this one): that checkpoint is now known healthy, or not."""
        if outcome.flat is None:  # a non-finite loss says nothing about the map
            return
        unseen, self._unseen = self._unseen, None
        if unseen is not None and unseen[1] == trainer.state.step - 1 and not outcome.flat:
            self.seen_healthy(unseen)

    def after_step(self, trainer: Trainer, batch: Batch, outcome: StepOutcome) -> None:
        every = self.config.train.checkpoint_every
        if every and trainer.state.step % every == 0:
            self.save(trainer)

    def after_validation(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        if "val/abs_rel" in metrics and metrics["val/abs_rel"] < self.state.best_abs_rel:
            self.state.best_abs_rel = float(metrics["val/abs_rel"])
            if self.config.train.keep != "last":
                self.save(trainer, self.run.best.name)

    def after_epoch(self, trainer: Trainer, finished: bool) -> None:
        if finished or trainer.state.step >= trainer.stop_at:
            self.save(trainer)

    def after_train(self, trainer: Trainer) -> None:
        if self._unseen is not None and not trainer.monitor.streak:
            # No step will run with the final checkpoint's weights: a run ending healthy counts it healthy.
            self.seen_healthy(self._unseen)
            self._unseen = None
        if self.config.train.keep == "best" and trainer.state.step >= trainer.total_steps and self.is_main:
            self._keep_best_only()

    def _keep_best_only(self) -> None:
        """``train.keep=best`` at the end of a finished run: drop last.pt (and healthy.pt) when best.pt is there."""
        if self.run.best.is_file():
            for path in (self.run.last, self.run.healthy):
                path.unlink(missing_ok=True)

    def keep_healthy(self) -> None:
        """If ``last.pt`` is the newest checkpoint known healthy, keep it as ``healthy.pt`` (a hard link)."""
        if self.healthy_checkpoint is not None and _same_path(self.healthy_checkpoint[0], self.run.last):
            if self.is_main:
                link_checkpoint(self.run.last, self.run.healthy)
            self.healthy_checkpoint = (self.run.healthy, self.healthy_checkpoint[1])

    def seen_healthy(self, checkpoint: tuple[Path, int]) -> None:
        self.healthy_checkpoint = checkpoint
        if self.is_main and _same_path(checkpoint[0], self.run.last):
            # last.pt is healthy and newer: the older copy is no longer needed.
            self.run.healthy.unlink(missing_ok=True)


def _same_path(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()
