"""How the loss terms are combined: over scales (Eq. 12) and between terms (fixed or learned).

Eq. 12 (multi-scale re-weighting): L = (1/n) Σ_{i=1..n} 2^(−i) L_i, with L_i the loss at scale
i − 1, applied to each term separately.

Between the terms k ∈ {reprojection, hints, smoothness}:

- ``fixed``: L = Σ_k w_k L_k with w = (1, hints_weight, smoothness_weight).
- ``uncertainty`` (Kendall, Gal & Cipolla 2018): learnable log-variances s_k,
  L = Σ_k exp(−s_k)·L_k + (s_k − s_k⁰), initialised at s_k⁰ = −log w_k. The constant −s_k⁰ does
  not change any gradient; it makes the value (not only the gradients) equal to the fixed
  weighting at initialisation, so the two modes log comparable totals from the first step.
  ∂L/∂s_k = 1 − exp(−s_k)·L_k: s_k settles where exp(−s_k) = 1/L_k.

  Bounded: s_k = s_k⁰ + b·tanh((r_k − s_k⁰)/b) with the parameter r_k (starting at s_k⁰) and
  b = log(``weight_range``), so each learned weight stays within [w_k/range, w_k·range] and
  equals the fixed weighting, in value and gradient, at the first step. Unbounded, the balance
  point 1/L_k is the trouble: the smoothness term is ~1e-4, so its weight would climb from 1e-3
  towards 1e4, where a flat disparity map (smoothness exactly 0) becomes the cheapest answer.

A term whose weight is 0 is switched off (it has no log-variance: −log 0 is infinite); a term
missing from the losses at a step (e.g. no hints in M mode) is skipped.
"""

from __future__ import annotations

import math
import typing

import torch
from torch import Tensor, nn

from mldanet.config import LossConfig, Weighting
from mldanet.losses.terms import LOSS_TERMS

MODES = typing.get_args(Weighting)


def multiscale_weights(n: int) -> list[float]:
    """Eq. 12 factors for scales 0..n−1: (1/n)·2^(−i), i = 1..n."""
    if n < 1:
        raise ValueError(f"multiscale_weights needs at least one scale, got n={n}")
    return [2.0 ** -(i + 1) / n for i in range(n)]


def multiscale_sum(per_scale: list[Tensor]) -> Tensor:
    """Σ_i multiscale_weights(n)[i] · per_scale[i], per_scale ordered from scale 0 (full size)."""
    return sum(w * value for w, value in zip(multiscale_weights(len(per_scale)), per_scale))


class LossWeighting(nn.Module):
    """Combines named scalar losses into the total, with fixed or learned (uncertainty) weights.

    weights: term → w_k ≥ 0 for the terms registered in :mod:`mldanet.losses.terms` (0 switches a term off).
    ``log_vars`` is a ParameterDict of the raw parameters r_k, empty in fixed mode: give them
    their own optimiser group without weight decay. ``weight_range`` > 1 bounds the learned
    weights (``math.inf``: unbounded).
    """

    def __init__(self, weights: dict[str, float], mode: str = "fixed", weight_range: float = 10.0) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"loss weighting mode {mode!r} is not one of {', '.join(MODES)}")
        if not weight_range > 1:
            raise ValueError(f"loss.weight_range={weight_range} must be greater than 1")
        for name, weight in weights.items():
            if name not in LOSS_TERMS:
                raise ValueError(f"unknown loss term {name!r}; terms are {', '.join(LOSS_TERMS)}")
            if not (weight >= 0 and math.isfinite(weight)):
                raise ValueError(f"loss weight {name}={weight} must be finite and ≥ 0")
        self.mode = mode
        self.log_bound = math.log(weight_range)
        self.base_weights = {name: float(w) for name, w in weights.items() if w > 0}
        self.initial_log_vars = {name: -math.log(w) for name, w in self.base_weights.items()}
        self.log_vars = nn.ParameterDict()
        if mode == "uncertainty":
            for name, s0 in self.initial_log_vars.items():
                self.log_vars[name] = nn.Parameter(torch.tensor(s0))

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        """losses: term → scalar (terms absent here are skipped) → the weighted total (scalar)."""
        unknown = set(losses) - set(LOSS_TERMS)
        if unknown:
            raise ValueError(f"unknown loss terms {sorted(unknown)}; terms are {', '.join(LOSS_TERMS)}")
        parts = []
        for name, value in losses.items():
            if name not in self.base_weights:
                continue
            if self.mode == "fixed":
                parts.append(self.base_weights[name] * value)
            else:
                s = self.log_variance(name)
                parts.append(torch.exp(-s) * value + (s - self.initial_log_vars[name]))
        if not parts:
            raise ValueError(
                f"no weighted loss term among {sorted(losses)} (active terms: {sorted(self.base_weights)})"
            )
        return torch.stack(parts).sum()

    def log_variance(self, name: str) -> Tensor:
        """The bounded log-variance s_k of a learned term (a scalar that carries gradient to r_k)."""
        raw, initial = self.log_vars[name], self.initial_log_vars[name]
        if math.isinf(self.log_bound):
            return raw
        return initial + self.log_bound * torch.tanh((raw - initial) / self.log_bound)

    def log_variances(self) -> dict[str, Tensor]:
        """s_k of every learned term, detached (empty in fixed mode)."""
        return {name: self.log_variance(name).detach() for name in self.log_vars}

    def weight_tensors(self) -> dict[str, Tensor]:
        """The current effective weights as detached scalar tensors (no device synchronisation)."""
        if self.mode == "fixed":
            return {name: torch.tensor(w) for name, w in self.base_weights.items()}
        return {name: torch.exp(-s) for name, s in self.log_variances().items()}

    def weights(self) -> dict[str, float]:
        """The current effective weight of every active term (w_k, or exp(−s_k) when learned)."""
        return {name: float(w) for name, w in self.weight_tensors().items()}


def build_loss_weighting(config: LossConfig) -> LossWeighting:
    """The weighting selected by ``loss.weighting`` with every registered term's weight (its
    ``loss.<weight_key>``, or 1: reprojection 1, hints ``loss.hints_weight``, smoothness
    ``loss.smoothness_weight``), learned weights bounded by ``loss.weight_range``."""
    weights = {}
    for name, term in LOSS_TERMS.items():
        value = 1.0 if term.weight_key is None else getattr(config, term.weight_key)
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"loss.{term.weight_key}={value} must be finite and ≥ 0")
        weights[name] = value
    return LossWeighting(weights, mode=config.weighting, weight_range=config.weight_range)
