"""Checkpoints: atomic writes, weights-only loading, and clear errors on foreign or broken files.

A checkpoint is a plain dict (loadable with ``torch.load(weights_only=True)``)::

    format            "mldanet-checkpoint/1"
    config            Config.to_dict()
    depth_net         state dict
    pose_net          state dict or None (S mode)
    loss_weighting    state dict (the learned log-variances of loss.weighting=uncertainty)
    optimizer, scaler state dicts (training state; the learning rate is a function of the step)
    epoch, step, batch_in_epoch   ints: where the run stands
    best_abs_rel      float; bad_steps, skipped_steps: the non-finite-step guard's counts
    history           logged scalars; collapse_monitor: the flat-map streak; world_size: processes
    rng               RNG states (torch CPU/CUDA as uint8 tensors, numpy/python as plain ints)

The trainer writes the networks, optimiser, loop position and RNG; best_abs_rel, the guard's
counts, history and collapse_monitor are its hooks' state (:mod:`mldanet.training.hooks`), each
field under its own name, so a new field is saved and resumed without touching this module.

``last.pt`` holds all of it (what ``--resume`` needs). ``best.pt`` holds the weights only
(:func:`weights_payload`: config, networks, step, epoch, best_abs_rel): the optimiser's moments
would triple its size (782 MB instead of 260 MB for MLDA-Net R18) for a file that is evaluated,
exported and predicted with, never resumed. Everything that loads weights reads either kind.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch


from mldanet.models.checkpoint import FORMAT
from mldanet.run_dir import CHECKPOINTS, LAST

# What a weights-only checkpoint keeps of a full one; the rest is training state for --resume.
WEIGHT_KEYS = ("config", "depth_net", "pose_net", "loss_weighting", "epoch", "step", "best_abs_rel")
# Without these a checkpoint cannot be resumed exactly.
TRAINING_STATE_KEYS = ("optimizer", "scaler", "rng", "batch_in_epoch")

def weights_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The weights-only part of a full checkpoint payload (for ``best.pt``)."""
    return {key: payload[key] for key in WEIGHT_KEYS if key in payload}


def require_training_state(payload: dict[str, Any], path: str | Path) -> None:
    """Refuse to resume from a weights-only checkpoint (``best.pt``), naming it and the file to use."""
    missing = [key for key in TRAINING_STATE_KEYS if key not in payload]
    if missing:
        run = _run_folder_hint(Path(path))
        raise ValueError(
            f"checkpoint {path} holds the weights only (no {', '.join(missing)}), so a run cannot continue from it: "
            f"--resume needs the run's last.pt ({run}), which keeps the optimiser and RNG state; "
            "best.pt is for evaluate, predict and export-onnx"
        )


def _run_folder_hint(path: Path) -> str:
    """Where the ``last.pt`` belonging to ``path`` would be, for messages."""
    last = path.with_name(LAST)
    return f"{last}" if last != path else f"{CHECKPOINTS}/{LAST} in the run folder"


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` to ``path`` atomically: a crash mid-write leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, **payload}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException as error:
        Path(tmp_name).unlink(missing_ok=True)
        if _is_disk_full(error):
            free_mib = shutil.disk_usage(path.parent).free / 2**20
            raise OSError(
                errno.ENOSPC,
                f"no space left on the disk to write checkpoint {path} ({free_mib:.0f} MiB free there once "
                f"the partial file was removed); the previous checkpoint is intact. Free some space or "
                f"point train.out at another disk",
            ) from error
        raise
    return path


def _is_disk_full(error: BaseException | None) -> bool:
    """Whether ``error`` or an error it arose from is a full disk or quota.

    torch.save reports a failed write as a RuntimeError ("unexpected pos ...") raised while
    handling the OSError, so the cause is only in the exception's context.
    """
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def link_checkpoint(path: str | Path, target: str | Path) -> Path:
    """Make ``target`` the same file as ``path`` (a hard link: no copy, no extra disk), atomically:
    ``target`` is replaced whole or not at all. Where hard links are refused (FAT, some network
    filesystems) the file is copied."""
    path, target = Path(path), Path(target)
    # Named like save_checkpoint's temporary files, so that remove_partial_writes clears a killed one.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def remove_partial_writes(folder: str | Path) -> list[Path]:
    """Delete the temporary files of writes that a killed process left in ``folder``.

    Only one process writes a run's checkpoints, so at the start of a run every such file is a
    dead one (a SIGKILL skips the clean-up in :func:`save_checkpoint`).
    """
    stale = sorted(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
