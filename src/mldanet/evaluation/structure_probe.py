"""How much a trained network's structure attention does: per level, its mixing weight γ, how far it
moves the decoder features, and how much the predicted disparity changes when it is switched off.

Issue 22 asks whether SA earns its place; these numbers say whether it is used at all, whatever
the metrics say (a γ that stays at its initial 0.1 and a 1 % feature change mean SA learned
nothing, not that it is useless).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mldanet.models.attention import StructureAttention


@dataclass(frozen=True)
class StructureLevelEffect:
    """One decoder level k: γ over channels (``None`` for the replacing forms) and the feature change
    ‖SA(f_h) − f_h‖ / ‖f_h‖ (mean over images)."""

    level: int
    gamma_mean: float | None
    gamma_min: float | None
    gamma_max: float | None
    feature_change: float


@dataclass(frozen=True)
class StructureProbe:
    levels: list[StructureLevelEffect]
    disparity_change_off: float  # mean |disp_SA off − disp| / disp at scale 0, SA off at every level


def structure_modules(net: nn.Module) -> dict[int, StructureAttention]:
    """The network's structure-attention modules by decoder level (empty when it has none)."""
    decoder = getattr(net, "decoder", None)
    modules = getattr(decoder, "structure_attention", None) or {}
    return {int(k): m for k, m in modules.items()}


@contextmanager
def structure_attention_off(net: nn.Module):
    """Within the block every SA level passes f_h unchanged (the ``"none"`` form's features)."""
    handles = [m.register_forward_hook(lambda _m, args, out: (args[1], out[1])) for m in structure_modules(net).values()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def probe_structure_attention(net: nn.Module, images: Tensor) -> StructureProbe | None:
    """images: B×3×H×W in [0, 1] → the effect of ``net``'s SA on them (``None`` without SA)."""
    modules = structure_modules(net)
    if not modules:
        return None
    net.eval()
    changes: dict[int, Tensor] = {}

    def record(level: int):
        def hook(_module, args, out):
            high, refined = args[1], out[0]
            change = (refined - high).flatten(1).norm(dim=1) / high.flatten(1).norm(dim=1).clamp_min(1e-12)
            changes[level] = change.mean()

        return hook

    handles = [m.register_forward_hook(record(k)) for k, m in modules.items()]
    try:
        disparity = net(images)[0]
    finally:
        for handle in handles:
            handle.remove()
    with structure_attention_off(net):
        disparity_off = net(images)[0]
    levels = []
    for k, module in sorted(modules.items()):
        gamma = module.gamma
        levels.append(StructureLevelEffect(
            level=k,
            gamma_mean=None if gamma is None else float(gamma.mean()),
            gamma_min=None if gamma is None else float(gamma.min()),
            gamma_max=None if gamma is None else float(gamma.max()),
            feature_change=float(changes[k]),
        ))
    relative = ((disparity_off - disparity).abs() / disparity.clamp_min(1e-12)).mean()
    return StructureProbe(levels, float(relative))
