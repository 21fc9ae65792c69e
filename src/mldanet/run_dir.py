"""The run folder: where a training run keeps its files, and when a new run may write into one.

Layout (the only place it is spelled)::

    RUN/config.yaml              the config the run was started (or last resumed) with
    RUN/checkpoints/last.pt      full checkpoint, what --resume continues
    RUN/checkpoints/best.pt      weights only, the best validation abs_rel
    RUN/checkpoints/healthy.pt   full checkpoint kept while the map is flat (see docs/ARCHITECTURE.md)
    RUN/checkpoints/config.yaml  the config beside the checkpoints
    RUN/tensorboard/             TensorBoard events
    RUN/train_files.txt          the lines the run trained on (evaluate's held-out check)

A folder given where a checkpoint is expected stands for its ``last.pt``. Pure paths: no torch,
no config, so that checkpoint loading, training, the commands and the demo can all use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHECKPOINTS = "checkpoints"
LAST, BEST, HEALTHY = "last.pt", "best.pt", "healthy.pt"
CONFIG = "config.yaml"
TENSORBOARD = "tensorboard"
TRAINED_LINES = "train_files.txt"


@dataclass(frozen=True)
class RunDir:
    """The run folder ``root`` (it need not exist yet)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    def checkpoint(self, name: str) -> Path:
        """``checkpoints/NAME`` (``last.pt``, ``best.pt``, ``healthy.pt``)."""
        return self.checkpoints / name

    @property
    def last(self) -> Path:
        return self.checkpoint(LAST)

    @property
    def best(self) -> Path:
        return self.checkpoint(BEST)

    @property
    def healthy(self) -> Path:
        return self.checkpoint(HEALTHY)

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def checkpoint_config(self) -> Path:
        return self.checkpoints / CONFIG

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD

    @property
    def trained_lines(self) -> Path:
        return self.root / TRAINED_LINES

    def checkpoint_files(self) -> list[Path]:
        """The checkpoints present (last, best, healthy order)."""
        return [path for path in (self.last, self.best, self.healthy) if path.is_file()]

    def is_run(self) -> bool:
        """Whether the folder holds a run that a new one must not overwrite: a checkpoint. A run that
        failed before its first checkpoint leaves just its config, and must be startable again."""
        return bool(self.checkpoint_files())

    def run_files(self) -> list[Path]:
        """Every file of a run present here (checkpoints, then the configs)."""
        return self.checkpoint_files() + [p for p in (self.checkpoint_config, self.config) if p.is_file()]

    def tensorboard_events(self) -> list[Path]:
        return sorted(self.tensorboard.glob("events.out.tfevents.*")) if self.tensorboard.is_dir() else []

    def relative(self, path: Path) -> str:
        """``path`` as named inside the run folder (``checkpoints/last.pt``)."""
        return path.relative_to(self.root).as_posix()

    def holds(self, checkpoint: Path | None) -> bool:
        """Whether ``checkpoint`` is one of this run's (so writing here continues that run)."""
        run = RunDir.of_checkpoint(checkpoint) if checkpoint is not None else None
        return run is not None and run.root.resolve() == self.root.resolve()

    @staticmethod
    def of_checkpoint(checkpoint: str | Path) -> RunDir | None:
        """The run a checkpoint belongs to: RUN for ``RUN/checkpoints/NAME.pt``, None for a loose file."""
        checkpoint = Path(checkpoint)
        return RunDir(checkpoint.parent.parent) if checkpoint.parent.name == CHECKPOINTS else None

    @staticmethod
    def resolve(path: str | Path) -> Path:
        """A checkpoint path as given: a file is itself; a folder stands for its last.pt (a run folder's
        ``checkpoints/last.pt``, else a folder of checkpoints' own ``last.pt`` when only that exists)."""
        path = Path(path)
        if not path.is_dir():
            return path
        candidate = RunDir(path).last
        loose = path / LAST
        return loose if not candidate.is_file() and loose.is_file() else candidate


# ------------------------------------------------------------------------ resume and overwrite policy
def named_checkpoint(resume: str | None) -> Path | None:
    """``--resume`` as a checkpoint path: a folder stands for its last.pt; None and "auto" name none."""
    return None if resume in (None, "auto") else RunDir.resolve(resume)


def resumed_run(checkpoint: Path, out_given: bool) -> RunDir | None:
    """The run a resumed ``checkpoint`` writes into: the run folder that holds it (not the
    ``train.out`` saved in it, which for a copied or moved folder is the original run, which
    resuming must not overwrite); None when the command line names the folder (``out_given``).

    Raises ValueError for a loose checkpoint without a folder to continue in.
    """
    run = RunDir.of_checkpoint(checkpoint)
    if run is not None:
        return run
    if not out_given:
        raise ValueError(
            f"--resume {checkpoint}: the checkpoint is not in a run folder's checkpoints/ folder, so there is no "
            "run folder to continue in: give --out FOLDER for the resumed run"
        )
    return None


def resume_checkpoint(resume: str | None, continue_last: bool, out_for: Callable[[Path | None], Path]) -> Path | None:
    """The checkpoint a run continues from, or None for a fresh start.

    resume: ``--resume`` (a run folder, a checkpoint file, "auto" or None). continue_last: "auto",
    or a worker that torchrun restarted: the run folder's last.pt comes first when it exists (a
    restart continues the restarted run, not the checkpoint it was started from). out_for: the
    run folder the run writes into, given the named checkpoint (its config may name it).
    """
    named = named_checkpoint(resume)
    if continue_last:
        last = RunDir(out_for(named)).last
        if last.is_file():
            return last
    return named


def refuse_existing_run(run: RunDir, resume: Path | None, overwrite: bool) -> None:
    """A run writing into ``run`` must not overwrite another run's checkpoints unasked.

    Allowed: ``overwrite``, continuing the run that is there (``resume`` is one of its checkpoints:
    ``--resume auto`` and a torchrun restart resume its last.pt when there is one), or a folder that
    holds no run. A finished ``train.keep=best`` run has no last.pt to continue, so ``--resume auto``
    there is refused too: starting afresh would overwrite its best.pt. Raises ValueError naming the
    files found.
    """
    if overwrite or run.holds(resume):
        return
    found = run.checkpoint_files()
    if found:
        raise ValueError(
            f"--out {run.root} already holds a run ({', '.join(run.relative(p) for p in found)}): continue it with "
            f"--resume {run.root}, train into a new --out, or add --overwrite to replace it"
        )


def remove_previous_run(run: RunDir) -> list[str]:
    """Delete the files of the run in ``run`` and its TensorBoard events (which would mix with the
    new run's curves) → what was removed (relative names)."""
    removed = run.run_files()
    for path in removed:
        path.unlink()
    events = run.tensorboard_events()
    for path in events:
        path.unlink()
    return [run.relative(p) for p in removed] + ([f"{len(events)} TensorBoard event files"] if events else [])
