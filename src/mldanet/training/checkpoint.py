"""Checkpoints: atomic writes, weights-only loading, and clear errors on foreign or broken files.

A checkpoint is a plain dict (loadable with ``torch.load(weights_only=True)``)::

    format       "mldanet-checkpoint/1"
    config       Config.to_dict()
    depth_net    state dict
    pose_net     state dict or None (S mode)
    optimizer, scheduler, loss_weighting, scaler   state dicts (training state)
    epoch, step  int; batch position inside the epoch is ``step - epoch_start_step``
    rng          RNG states (torch CPU/CUDA as uint8 tensors, numpy/python as plain ints)
    best_abs_rel float
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mldanet.config import Config, config_from_dict

FORMAT = "mldanet-checkpoint/1"


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


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A run folder stands for its ``checkpoints/last.pt`` (or a folder of checkpoints for its ``last.pt``)."""
    path = Path(path)
    if path.is_dir():
        candidate = path / "checkpoints" / "last.pt"
        return candidate if candidate.is_file() else path / "last.pt"
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; every failure names the file.

    mmap: map the tensors from the file instead of reading them (nothing is read until a tensor
    is used), for callers that only need the config or the counters.
    """
    path = resolve_checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"checkpoint {path} was refused by weights-only loading (it holds objects other than "
            f"tensors and plain data; it may be unsafe): {str(error).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"checkpoint {path} is corrupt or truncated: {str(error).splitlines()[0]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not an mldanet checkpoint (no '{FORMAT}' format tag)")
    return payload


def checkpoint_config(payload: dict[str, Any]) -> Config:
    config = payload["config"]
    model = config.get("model") if isinstance(config, dict) else None
    if isinstance(model, dict):
        config = {**config, "model": _upgraded_model_section(model)}
    return config_from_dict(config)


def _upgraded_model_section(model: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's model section in today's keys: checkpoints written before the attention
    forms were selectable used the forms of their day, which are no longer the defaults."""
    model = dict(model)
    if "attention_affinity" not in model:
        model["attention_affinity"] = "scaled" if model.pop("attention_scale", True) else "raw"
    model.setdefault("structure_attention", "guided")
    model.setdefault("decoder_norm", "none")
    return model


def read_checkpoint_config(path: str | Path) -> Config:
    """The config saved in a checkpoint, without reading its tensors."""
    return checkpoint_config(load_checkpoint(path, mmap=True))


def load_state_dict_checked(
    module: nn.Module, state: dict[str, Any], source: str | Path, what: str, assign: bool = False
) -> None:
    """``load_state_dict`` whose error says which checkpoint and which network did not fit, briefly."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {label} (first: {keys[0]})")
        raise ValueError(f"checkpoint {source}: the {what} weights do not fit this network: " + ", ".join(parts))
    module.load_state_dict(state, assign=assign)


def load_depth_net(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """Rebuild the depth network a checkpoint was trained with and load its weights (eval mode)."""
    from mldanet.models import depth_net_from_config

    payload = load_checkpoint(path)
    config = checkpoint_config(payload)
    # Built on the meta device: the checkpoint's tensors are assigned, so no time goes into a
    # random initialisation that would be overwritten.
    with torch.device("meta"):
        net = depth_net_from_config(config.model)
    try:
        load_state_dict_checked(net, payload["depth_net"], path, "depth", assign=True)
    except ValueError as error:
        raise ValueError(
            f"{error} (its config says {config.model.variant} {config.model.backbone}: "
            "was the checkpoint edited or written by another program?)"
        ) from None
    return net.to(device).eval(), config
