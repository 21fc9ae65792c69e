"""Collapse monitor: notices when the predicted disparity map goes flat and stays flat.

Each training step's finest disparity map is measured by its *variation* (spatial std over spatial
mean, averaged over the batch); a map is **flat** under ``train.collapse_threshold`` and
**collapsed** once flat for ``train.collapse_patience`` consecutive steps. The statistics stay on
the device; the trainer reads the variation back with the loss it reads anyway, and the gate
statistics only at log steps. Why these thresholds, with the measurements: docs/ARCHITECTURE.md,
"Flat maps: one measure, two thresholds".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

# A gate within this distance of 0 or 1 is saturated: its sigmoid's gradient is below 1e-3.
SATURATION = 1e-3


@dataclass
class MapStatistics:
    """One step's statistics, as 0-dim float32 tensors on the device of the maps."""

    variation: Tensor
    gate_mean: dict[int, Tensor]  # decoder level k -> mean T
    gate_saturated: dict[int, Tensor]  # decoder level k -> fraction of T within SATURATION of 0 or 1

    def scalars(self) -> dict[str, Tensor]:
        """The logged names: ``collapse/disp_variation``, ``gates/<k>/mean``, ``gates/<k>/saturated``."""
        values = {"collapse/disp_variation": self.variation}
        for k in self.gate_mean:
            values[f"gates/{k}/mean"] = self.gate_mean[k]
            values[f"gates/{k}/saturated"] = self.gate_saturated[k]
        return values


def disparity_variation(disparity: Tensor) -> Tensor:
    """B×1×H×W disparity → 0-dim: spatial std / spatial mean of each image, averaged over the batch.

    The standard deviation is the population one (divides by H·W). A map of zeros (a sigmoid
    saturated at 0) has variation 0, not 0/0.
    """
    flat = disparity.detach().float().flatten(1)
    std, mean = torch.std_mean(flat, dim=1, correction=0)
    return (std / mean.clamp_min(torch.finfo(torch.float32).tiny)).mean()


def map_statistics(disparity: Tensor, gates: dict[int, Tensor]) -> MapStatistics:
    """Disparity B×1×H×W and gates {level k: B×1×h×w in [0, 1]} (empty for the baseline) → statistics."""
    means, saturated = {}, {}
    for k, gate in gates.items():
        gate = gate.detach().float()
        means[k] = gate.mean()
        saturated[k] = ((gate < SATURATION) | (gate > 1 - SATURATION)).float().mean()
    return MapStatistics(disparity_variation(disparity), means, saturated)


@dataclass
class CollapseMonitor:
    """Counts consecutive flat steps; ``streak`` and the latest ``variation`` go into checkpoints."""

    threshold: float
    patience: int
    streak: int = 0
    variation: float = float("nan")
    # Whether update() has reported the current collapse; not saved, so a resumed run reports it again.
    _reported: bool = field(default=False, init=False, repr=False)

    def is_flat(self, variation: float) -> bool:
        """A NaN variation (a non-finite map) is not flat: the non-finite-loss guard handles it."""
        return variation < self.threshold

    def update(self, variation: float, flat: bool) -> bool:
        """Count one step (``flat``: :meth:`is_flat`, or every rank's agreement on it under torchrun).

        → True once per collapse: on the first collapsed step (the ``patience``-th flat one in a
        row, or the first step of a resumed run that is still collapsed). A step that is not
        flat resets the streak.
        """
        self.variation = variation
        self.streak = self.streak + 1 if flat else 0
        report = self.collapsed and not self._reported
        self._reported = self.collapsed
        return report

    @property
    def collapsed(self) -> bool:
        return self.streak >= self.patience

    def state_dict(self) -> dict[str, float | int]:
        return {"streak": self.streak, "variation": self.variation}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.streak = int(state["streak"])
        self.variation = float(state["variation"])
