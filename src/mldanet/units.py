"""Training units (docs/METHOD.md §6.3): depths are learnt in units where the stereo baseline is 0.1.

A stereo-trained network's depth × (the rig's baseline in metres / 0.1) is metric: ×5.4 for
KITTI's 0.54 m. NumPy-free and torch-free, so hint workers can import it.
"""

from __future__ import annotations

TRAINING_BASELINE = 0.1


def metric_scale(baseline_m: float) -> float:
    """Training units → metres for a rig of ``baseline_m`` metres (5.4 for KITTI's 0.54 m)."""
    return round(baseline_m / TRAINING_BASELINE, 12)  # 0.3 / 0.1 is 2.9999999999999996 in floats
