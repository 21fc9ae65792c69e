"""Reading checkpoints: weights-only loading, the config they were trained with, the depth network.

What a checkpoint holds is described in :mod:`mldanet.training.checkpoint` (which writes them).
Every loader here uses ``torch.load(weights_only=True)`` after checking the file is a zip archive
(a text file, a folder or a truncated download is named in one line); predict, export, evaluate
and ``torch.hub`` read checkpoints through this module without importing the training code.
"""


from __future__ import annotations

import codecs
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mldanet.config import Config, config_from_dict
from mldanet.models import depth_net_from_config
from mldanet.models.weights import weights_only_refusal
from mldanet.run_dir import LAST, RunDir

FORMAT = "mldanet-checkpoint/1"

# torch.save writes a zip archive; its first bytes are a zip local-file header.
ZIP_MAGIC = b"PK\x03\x04"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; every failure names the file.

    mmap: map the tensors from the file instead of reading them (nothing is read until a tensor
    is used), for callers that only need the config or the counters.
    """
    given = Path(path)
    path = RunDir.resolve(given)  # a folder stands for its last.pt
    if given.is_dir() and not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint in folder {given}: neither {RunDir(given).last} nor {given / LAST} exists; "
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
    model.setdefault("multi_level", True)
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
