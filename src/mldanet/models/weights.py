"""ResNet backbones with ImageNet weights from torchvision's weights API, or from a local file.

Offline machines have two ways out, named in every download error: train from scratch
(``--weights-init scratch``, ``pretrained=False``) or point at a local torchvision state dict
(``--weights-init PATH``, ``weights_path=PATH``), e.g. one saved with
``torch.save(torchvision.models.resnet18(weights="IMAGENET1K_V1").state_dict(), PATH)``.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch
from torchvision.models import ResNet, ResNet18_Weights, ResNet50_Weights, WeightsEnum, resnet18, resnet50

from mldanet.paths import require_file

# torchvision ResNets and their ImageNet weights (the backbones registered in models/encoder.py use them)
RESNETS = {
    "resnet18": (resnet18, ResNet18_Weights.IMAGENET1K_V1),
    "resnet50": (resnet50, ResNet50_Weights.IMAGENET1K_V1),
}


def load_resnet(name: str, pretrained: bool = False, weights_path: str | Path | None = None) -> ResNet:
    """A torchvision ResNet: randomly initialised, ImageNet-pretrained, or loaded from ``weights_path``.

    ``weights_path`` (a torchvision state dict; the ``fc.*`` classifier keys may be absent) takes
    precedence over ``pretrained``. The ImageNet checkpoint goes through the torch.hub cache
    (``$TORCH_HOME/hub/checkpoints``), so it downloads once per machine.
    """
    if name not in RESNETS:
        raise ValueError(f"ResNet {name!r} is not one of {', '.join(RESNETS)}")
    factory, weights = RESNETS[name]
    model = factory(weights=None)
    if weights_path is not None:
        load_state_dict_file(model, weights_path, name)
    elif pretrained:
        model.load_state_dict(download_state_dict(weights, name))
    return model


def download_state_dict(weights: WeightsEnum, name: str) -> dict[str, torch.Tensor]:
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a bad hash a RuntimeError
        raise ValueError(
            f"could not download the ImageNet weights {weights} for {name} from {weights.url} "
            f"({type(error).__name__}: {error}); offline, either train from scratch with "
            f"`--weights-init scratch` (pretrained=False) or pass a local torchvision state-dict "
            f"file with `--weights-init PATH` (weights_path=PATH)"
        ) from error


def weights_only_refusal(error: pickle.UnpicklingError) -> str | None:
    """Why ``torch.load(weights_only=True)`` refused a file, without PyTorch's paragraph; None when
    the pickle is merely malformed.

    PyTorch's message suggests re-running with ``weights_only=False`` — the one thing a user
    must not do with a file of unknown origin — so only the global it refused is kept.
    """
    text = str(error)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f"it would call {found.group(1)}"
    # bytes that are no pickle at all come back as an unsupported operand, not as a refusal
    if "Weights only load failed" not in text or "Unsupported operand" in text:
        return None
    return "it holds objects other than tensors and plain data"


def load_state_dict_file(model: ResNet, path: str | Path, name: str) -> None:
    """Load a torchvision ResNet state dict from ``path`` into ``model``; every failure names the file."""
    path = require_file(path, "backbone weights file (--weights-init)")
    if path.stat().st_size == 0:
        raise ValueError(f"backbone weights file {path} is empty: give a torchvision ResNet state dict (.pth)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # torch's weights-only unpickler reports a text file as KeyError/IndexError of an opcode byte
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, KeyError, IndexError,
            ValueError, TypeError) as error:
        refusal = weights_only_refusal(error) if isinstance(error, pickle.UnpicklingError) else None
        if refusal is not None:
            raise ValueError(
                f"backbone weights file {path} was refused unread by weights-only loading ({refusal}): "
                "give a torchvision ResNet state dict (.pth)"
            ) from None
        text = str(error).strip()
        reason = "a text file" if isinstance(error, (KeyError, IndexError)) else (
            text.splitlines()[0] if text else type(error).__name__)
        raise ValueError(
            f"backbone weights file {path} is not a readable torch state dict ({reason}): give a torchvision "
            "ResNet state dict (.pth)"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"backbone weights file {path} does not hold a state dict (name → tensor)")
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith("fc.")]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        problems = [
            f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched))
            if keys
        ]
        raise ValueError(f"backbone weights file {path} does not fit torchvision {name} ({'; '.join(problems)})")
    model.load_state_dict(state, strict=False)

