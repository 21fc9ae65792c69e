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

``last.pt`` holds all of it (what ``--resume`` needs). ``best.pt`` holds the weights only
(:func:`weights_payload`: config, networks, step, epoch, best_abs_rel): the optimiser's moments
would triple its size (782 MB instead of 260 MB for MLDA-Net R18) for a file that is evaluated,
exported and predicted with, never resumed. Everything that loads weights reads either kind.
"""

from __future__ import annotations

import codecs
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
from mldanet.models.weights import weights_only_refusal

FORMAT = "mldanet-checkpoint/1"

# What a weights-only checkpoint keeps of a full one; the rest is training state for --resume.
WEIGHT_KEYS = ("config", "depth_net", "pose_net", "loss_weighting", "epoch", "step", "best_abs_rel")
# Without these a checkpoint cannot be resumed exactly.
TRAINING_STATE_KEYS = ("optimizer", "scaler", "rng", "batch_in_epoch")

# torch.save writes a zip archive; its first bytes are a zip local-file header.
ZIP_MAGIC = b"PK\x03\x04"


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
    last = path.with_name("last.pt")
    return f"{last}" if last != path else "checkpoints/last.pt in the run folder"


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
    given = Path(path)
    path = resolve_checkpoint_path(given)
    if given.is_dir() and not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint in folder {given}: neither {given / 'checkpoints' / 'last.pt'} nor {path} exists; "
            "give a run folder that has written a checkpoint, or a .pt file"
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    _check_archive(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        refusal = weights_only_refusal(error)
        if refusal is None:
            raise ValueError(f"checkpoint {path} is corrupt or truncated: {_first_line(error)}") from None
        raise ValueError(
            f"checkpoint {path} was refused unread by weights-only loading ({refusal}; it may be unsafe): "
            "give a checkpoints/last.pt or best.pt written by mldanet train"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"checkpoint {path} is corrupt or truncated: {_first_line(error)}") from None
    except Exception as error:  # noqa: BLE001 - torch's unpickler fails on foreign bytes with KeyError, IndexError, ...
        raise ValueError(
            f"{path} is not an mldanet checkpoint (torch.load failed: {type(error).__name__} {_first_line(error)}): "
            "give a checkpoints/last.pt or best.pt written by mldanet train"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not an mldanet checkpoint (no '{FORMAT}' format tag): give a checkpoints/last.pt "
            "or best.pt written by mldanet train"
        )
    return payload


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def _check_archive(path: Path) -> None:
    """Refuse files that are not zip archives before torch reads them.

    Handed a text file or an empty one, ``torch.load`` fails with ``KeyError: 101``, ``EOFError``
    or ``IndexError`` (and with ``mmap`` with advice about ``torch.save`` options), none of which
    names the file. mldanet writes only zip archives, so the first bytes tell.
    """
    with path.open("rb") as handle:
        head = handle.read(len(ZIP_MAGIC))
    if not head:
        raise ValueError(
            f"{path} is an empty file, not an mldanet checkpoint (a copy or download cut short?): "
            "give a checkpoints/last.pt or best.pt written by mldanet train"
        )
    if head != ZIP_MAGIC:
        kind = "a text file" if _looks_like_text(path) else "not a PyTorch zip archive"
        raise ValueError(
            f"{path} is not an mldanet checkpoint ({kind}): give a checkpoints/last.pt or best.pt "
            "written by mldanet train"
        )


def _looks_like_text(path: Path) -> bool:
    """The first 512 bytes are UTF-8 (a character cut at the end allowed) without control bytes
    other than whitespace."""
    with path.open("rb") as handle:
        head = handle.read(512)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return not any(byte < 9 or 13 < byte < 32 for byte in head)


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
